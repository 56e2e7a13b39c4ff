package dev.perfusion.cli;

import dev.perfusion.eval.MethodEvaluation;
import dev.perfusion.io.layout.ModelExport;
import dev.perfusion.io.layout.ModelFamily;
import dev.perfusion.pretrain.BaseModelRecipe;
import dev.perfusion.training.ConceptMethod;
import dev.perfusion.training.ConceptMethods;
import dev.perfusion.training.TrainingImages;
import dev.perfusion.sampling.Schedulers;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * The values of an enumerated option as the command line spells them, accepted in any case: the library's own name
 * of each value where it has one (a scheduler's, a training method's), else the constant's name in lower case with
 * '-' for '_'. Each subclass serves one option type as picocli's converter and as the candidates that
 * {@code ${COMPLETION-CANDIDATES}} lists in the option's description, so that help shows what parsing accepts:
 * {@code @Option(converter = Choices.Fit.class, completionCandidates = Choices.Fit.class)}.
 */
abstract class Choices<T> implements ITypeConverter<T>, Iterable<String> {
    private final List<T> values;
    private final Function<T, String> spelling;

    Choices(List<T> values, Function<T, String> spelling) {
        this.values = List.copyOf(values);
        this.spelling = spelling;
    }

    @Override
    public T convert(String text) {
        for (T value : values) {
            if (spelling.apply(value).equalsIgnoreCase(text)) return value;
        }
        throw new TypeConversionException("'" + text + "' is not one of " + String.join(", ", this));
    }

    @Override
    public Iterator<String> iterator() {
        return values.stream().map(spelling).iterator();
    }

    static String lowerCase(Enum<?> value) {
        return value.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    static final class Scheduler extends Choices<Schedulers.Kind> {
        Scheduler() { super(List.of(Schedulers.Kind.values()), k -> k.id); }
    }

    static final class Method extends Choices<ConceptMethod> {
        Method() { super(ConceptMethods.ALL, ConceptMethod::id); }
    }

    static final class Fit extends Choices<TrainingImages.Fit> {
        Fit() { super(List.of(TrainingImages.Fit.values()), Choices::lowerCase); }
    }

    static final class EvaluationMask extends Choices<MethodEvaluation.Mask> {
        EvaluationMask() { super(List.of(MethodEvaluation.Mask.values()), Choices::lowerCase); }
    }

    static final class LocalizationForm extends Choices<BaseModelRecipe.Localization> {
        LocalizationForm() { super(List.of(BaseModelRecipe.Localization.values()), Choices::lowerCase); }
    }

    static final class Family extends Choices<String> {
        Family() { super(ModelFamily.BUILT_IN, f -> f); }
    }

    static final class Precision extends Choices<ModelOptions.PrecisionName> {
        Precision() { super(List.of(ModelOptions.PrecisionName.values()), Choices::lowerCase); }
    }

    static final class PretrainingPrecision extends Choices<PretrainCommand.Precision> {
        PretrainingPrecision() { super(List.of(PretrainCommand.Precision.values()), Choices::lowerCase); }
    }

    static final class Device extends Choices<ModelOptions.DeviceName> {
        Device() { super(List.of(ModelOptions.DeviceName.values()), Choices::lowerCase); }
    }

    static final class StoredDtype extends Choices<ConvertCommand.StoredDtype> {
        StoredDtype() { super(List.of(ConvertCommand.StoredDtype.values()), Choices::lowerCase); }
    }

    static final class ExportTarget extends Choices<ModelExport.Target> {
        ExportTarget() { super(List.of(ModelExport.Target.values()), Choices::lowerCase); }
    }

    static final class Judge extends Choices<JudgesCommand.Judge> {
        Judge() { super(List.of(JudgesCommand.Judge.values()), Choices::lowerCase); }
    }
}
