package dev.perfusion.world;

/** Draws one category into object-local coordinates (see {@link Painter}). */
interface ObjectDrawer {
    void draw(Painter p);

    static ObjectDrawer of(Category c) {
        return switch (c) {
            case TEDDY -> new TeddyDrawer();
            case CAT -> new CatDrawer();
            case DOG -> new DogDrawer();
            case CAR -> new CarDrawer();
            case HOUSE -> new HouseDrawer();
            case TREE -> new TreeDrawer();
            case MUG -> new MugDrawer();
            case BIRD -> new BirdDrawer();
        };
    }
}
