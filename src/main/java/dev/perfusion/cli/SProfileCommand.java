package dev.perfusion.cli;

import dev.perfusion.perfusion.CaptionCorpus;
import dev.perfusion.perfusion.CovarianceCache;
import dev.perfusion.perfusion.SupercategoryProfile;
import dev.perfusion.tensor.Ops;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.text.ClipTokenizer;
import dev.perfusion.text.WordOrderProfile;
import dev.perfusion.training.ConceptTrainer;
import dev.perfusion.world.Bundled;
import dev.perfusion.world.Category;
import dev.perfusion.world.ColorWord;
import dev.perfusion.world.Prompts;
import dev.perfusion.world.WorldCorpus;
import org.bytedeco.pytorch.global.torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;

@Command(name = "s-profile", mixinStandardHelpOptions = true,
        description = {"Measure s on every token before any concept is trained.",
                "The s profile of a text encoder: how much each token position resembles a supercategory word. For each world category word w: i* = w's mean encoding over the concept-training templates; s = e^T C^-1 i* / (i*^T C^-1 i*) "
                        + "at every position of the 16 evaluation prompts filled with w. Prints the largest and median s away from w "
                        + "(BOS, other words, EOS, padding), overall and per word. Reads the tokenizer/ and text_encoder/ of a model folder, "
                        + "or of a pretrain work folder once its contrastive stage is done.",
                "Then the word-order profile: whether the encodings of \"a A on the left and a B on the right on the grass\" differ "
                        + "from those of the prompt with A and B swapped, without which no UNet can put each object on its side; and the "
                        + "colour binding: whether \"a C A on the left and a D B on the right on the grass\" encodes differently with the "
                        + "colours C and D swapped, without which no UNet can paint each colour on its own object."})
final class SProfileCommand implements Callable<Integer> {
    @Option(names = "--model", paramLabel = "DIR", description = "A folder with tokenizer/ and text_encoder/: a model or a pretrain --work folder (default: the bundled model).")
    Path model;
    @Option(names = "--captions", defaultValue = "" + CovarianceCache.DEFAULT_CAPTIONS, description = "Captions for the input covariance C (default: ${DEFAULT-VALUE}).")
    int captions;
    @Option(names = "--top", defaultValue = "10", description = "List this many positions with the largest s away from the word (default: ${DEFAULT-VALUE}).")
    int top;

    @Override
    public Integer call() throws Exception {
        if (top < 0) throw new IllegalArgumentException("--top must be at least 0, got " + top);
        if (captions < 1) throw new IllegalArgumentException("--captions must be at least 1, got " + captions);
        Path dir = model != null ? model : Bundled.model();
        for (String part : List.of("tokenizer/vocab.json", "text_encoder/model.safetensors")) {
            if (!Files.isRegularFile(dir.resolve(part))) throw new IllegalArgumentException(dir + ": no " + part);
        }
        TerminalProgress progress = new TerminalProgress(System.out);
        ClipTokenizer tokenizer = ClipTokenizer.load(dir.resolve("tokenizer"));
        ClipTextModel text = ClipTextModel.load(dir.resolve("text_encoder"), Ops.cpu(), torch.ScalarType.Float);
        // a world model's corpus; a pretrain work folder (its losses.csv) holds a world text encoder too
        CaptionCorpus corpus = WorldCorpus.isWorldBaseModel(dir) || Files.isRegularFile(dir.resolve("losses.csv")) ? WorldCorpus.world() : CaptionCorpus.generic();
        List<String> words = Arrays.stream(Category.values()).map(Category::word).toList();
        SupercategoryProfile profile = SupercategoryProfile.measure(tokenizer, text, CovarianceCache.captions(tokenizer, corpus, captions), words,
                ConceptTrainer.templatesFor(tokenizer), Prompts.evaluation(), progress);
        System.out.println("text encoder " + dir.resolve("text_encoder") + ": " + text.config().numHiddenLayers() + " layers x "
                + text.config().hiddenSize() + "; C from " + captions + " captions of the " + corpus.name() + " corpus");
        profile.perWord().forEach(System.out::println);
        profile.perKind().forEach(System.out::println);
        for (SupercategoryProfile.Position p : profile.highest(top)) {
            System.out.println(String.format(java.util.Locale.ROOT, "  s %.3f at %d '%s' (%s) of \"%s\"", p.s(), p.position(), p.token(),
                    p.kind().name().toLowerCase(java.util.Locale.ROOT), p.prompt()));
        }
        System.out.println(profile.summary());
        System.out.println(WordOrderProfile.measure(tokenizer, text, words).summary());
        List<List<String>> neighbours = IntStream.range(0, words.size()).mapToObj(i -> List.of(words.get(i), words.get((i + 1) % words.size()))).toList();
        List<String> colours = Arrays.stream(ColorWord.values()).map(ColorWord::word).toList();
        System.out.println(WordOrderProfile.measureColours(tokenizer, text, colours, neighbours).summary());
        return 0;
    }
}
