package dev.perfusion.fuzz;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.perfusion.sampling.Scheduler;
import dev.perfusion.sampling.SchedulerConfig;
import dev.perfusion.sampling.Schedulers;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import dev.perfusion.text.ClipTextConfig;
import dev.perfusion.text.ClipTextModel;
import dev.perfusion.unet.UNet2DConditionModel;
import dev.perfusion.unet.UNetConfig;
import dev.perfusion.vae.AutoencoderKL;
import dev.perfusion.vae.VaeConfig;
import org.bytedeco.pytorch.Tensor;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The config.json readers on any bytes, each followed by what a config is for: building the model's structure
 * (shapes only, nothing allocated) or the scheduler's timesteps and steps. A config that is read must build.
 * Seeds: the built-in SD 1.5 / 2.1 configs, the bundled world model's, and minimal ones.
 */
class ConfigFuzzTest {
    /** The keys and values the readers look for; Jackson is not instrumented, so the fuzzer learns them only from here. */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.METHOD)
    @DictionaryEntries({
            "\"in_channels\"", "\"out_channels\"", "\"block_out_channels\"", "\"layers_per_block\"",
            "\"down_block_types\"", "\"up_block_types\"", "\"mid_block_type\"", "\"cross_attention_dim\"",
            "\"attention_head_dim\"", "\"num_attention_heads\"", "\"transformer_layers_per_block\"",
            "\"norm_num_groups\"", "\"use_linear_projection\"", "\"latent_channels\"", "\"scaling_factor\"",
            "\"vocab_size\"", "\"hidden_size\"", "\"intermediate_size\"", "\"num_hidden_layers\"",
            "\"max_position_embeddings\"", "\"hidden_act\"", "\"text_config\"", "\"model_type\"",
            "\"num_train_timesteps\"", "\"beta_start\"", "\"beta_end\"", "\"beta_schedule\"", "\"prediction_type\"",
            "\"timestep_spacing\"", "\"steps_offset\"", "\"use_karras_sigmas\"", "\"skip_prk_steps\"",
            "\"set_alpha_to_one\"", "\"clip_sample\"", "\"algorithm_type\"", "\"CrossAttnDownBlock2D\"",
            "\"DownBlock2D\"", "\"CrossAttnUpBlock2D\"", "\"UpBlock2D\"", "\"DownEncoderBlock2D\"",
            "\"UpDecoderBlock2D\"", "\"clip\"", "\"quick_gelu\"", "\"scaled_linear\"", "\"squaredcos_cap_v2\"",
            "\"v_prediction\"", "\"trailing\"", "\"leading\"", "\"linspace\"", "null", "true", "false"})
    private @interface ConfigWords {}

    @FuzzTest(maxDuration = "2m")
    @ConfigWords
    void unet(byte[] bytes) throws Exception {
        Path file = Readers.file("config.json", bytes);
        try {
            UNetConfig c = Readers.readOrRefuse(file.toString(), () -> UNetConfig.load(file));
            if (c != null) assertTrue(UNet2DConditionModel.create(c).parameterCount() > 0);
        } finally {
            Readers.delete(file);
        }
    }

    @FuzzTest(maxDuration = "2m")
    @ConfigWords
    void vae(byte[] bytes) throws Exception {
        Path file = Readers.file("config.json", bytes);
        try {
            VaeConfig c = Readers.readOrRefuse(file.toString(), () -> VaeConfig.load(file));
            if (c != null) assertTrue(AutoencoderKL.create(c).parameterCount() > 0);
        } finally {
            Readers.delete(file);
        }
    }

    @FuzzTest(maxDuration = "2m")
    @ConfigWords
    void textEncoder(byte[] bytes) throws Exception {
        Path file = Readers.file("config.json", bytes);
        try {
            ClipTextConfig c = Readers.readOrRefuse(file.toString(), () -> ClipTextConfig.load(file));
            if (c != null) assertTrue(ClipTextModel.create(c).parameterCount() > 0);
        } finally {
            Readers.delete(file);
        }
    }

    @FuzzTest(maxDuration = "2m")
    @ConfigWords
    void scheduler(byte[] bytes) throws Exception {
        Path file = Readers.file("scheduler_config.json", bytes);
        try (Scope s = Scope.inference()) {
            SchedulerConfig c = Readers.readOrRefuse(file.toString(), () -> SchedulerConfig.load(file));
            if (c == null) return;
            for (String name : Schedulers.NAMES) {
                Scheduler sched;
                try {
                    sched = Schedulers.create(name, c);
                } catch (IllegalArgumentException e) {
                    // the one key checked per scheduler, not on reading: another scheduler may use the config
                    assertTrue(name.equals("dpmpp-2m") && e.getMessage().contains("algorithm_type"), e.getMessage());
                    continue;
                }
                try {
                    sched.setTimesteps(4);
                } catch (IllegalArgumentException e) {
                    // four steps of a schedule of three, or with a steps_offset past its end: the caller's choice refused
                    assertTrue(e.getMessage().contains("steps"), e.getMessage());
                    continue;
                }
                int trainSteps = c.numTrainTimesteps();
                for (double t : sched.timesteps()) assertTrue(t >= 0 && t < trainSteps, name + " timestep " + t);
                Tensor x = Ops.zeros(1, 1, 1, 1);
                for (int i = 0; i < sched.timesteps().length; i++) {
                    x = sched.step(Ops.zeros(1, 1, 1, 1), i, sched.scaleModelInput(x, i), shape -> Ops.zeros(shape));
                }
            }
        } finally {
            Readers.delete(file);
        }
    }
}
