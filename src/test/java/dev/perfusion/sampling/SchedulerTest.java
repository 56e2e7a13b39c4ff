package dev.perfusion.sampling;

import dev.perfusion.Fixtures;
import dev.perfusion.io.layout.ModelConfigs;
import dev.perfusion.tensor.Ops;
import dev.perfusion.tensor.Scope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class SchedulerTest {
    static SchedulerConfig fixtureConfig() throws IOException {
        return SchedulerConfig.load(Fixtures.diffusers().resolve("scheduler/scheduler_config.json"));
    }

    static SchedulerConfig sd15() {
        return ModelConfigs.builtIn("sd15").scheduler();
    }

    @Test
    void betasAndCumulativeAlphasMatchWithinRounding() throws IOException {
        // libtorch 2.10 and the reference torch 1.13 round float32 linspace differently in the last bits
        NoiseSchedule s = new NoiseSchedule(fixtureConfig());
        float[] betas = Fixtures.golden("scheduler_betas.npy").floats(), ours = s.betas();
        for (int i = 0; i < betas.length; i++) assertEquals(betas[i], ours[i], 1e-6 * betas[i], "beta " + i);
        float[] ac = Fixtures.golden("scheduler_alphas_cumprod.npy").floats(), ourAc = s.alphasCumprod();
        for (int i = 0; i < ac.length; i++) assertEquals(ac[i], ourAc[i], 1e-6, "alphas_cumprod " + i + " (fixture tolerance 1e-6)");
    }

    @ParameterizedTest
    @ValueSource(ints = {7, 10, 25, 50})
    void ddimTimestepsAreExact(int steps) throws IOException {
        Scheduler ddim = Schedulers.create("ddim", fixtureConfig());
        ddim.setTimesteps(steps);
        long[] golden = Fixtures.golden("scheduler_DDIMScheduler_" + steps + "_timesteps.npy").longs();
        double[] ours = ddim.timesteps();
        assertEquals(golden.length, ours.length);
        for (int i = 0; i < golden.length; i++) assertEquals(golden[i], ours[i]);
    }

    @Test
    void ddimReproducesTheReferenceTrace() throws IOException {
        Scheduler ddim = Schedulers.create("ddim", fixtureConfig());
        ddim.setTimesteps(10);
        try (Scope s = Scope.inference()) {
            Tensor latents = Fixtures.golden("pipe_ddim_initial_latents.npy").toTensor();
            Tensor outputs = Fixtures.golden("pipe_ddim_trace_unet_output.npy").toTensor();
            Tensor expected = Fixtures.golden("pipe_ddim_trace_latents.npy").toTensor();
            for (int i = 0; i < 10; i++) {
                Tensor[] uc = Ops.chunk(outputs.select(0, i), 2, 0);
                Tensor guided = Ops.addScaled(uc[0], Ops.sub(uc[1], uc[0]), 7.5);
                latents = ddim.step(guided, i, latents, null);
                double diff = Ops.maxAbsDiff(latents, expected.select(0, i));
                assertTrue(diff < 1e-4, "step " + i + ": max abs diff " + diff);
            }
        }
    }

    @Test
    void eulerSigmasFollowTheSdSchedule() {
        EulerScheduler euler = new EulerScheduler(sd15(), false);
        euler.setTimesteps(10);
        double[] t = euler.timesteps(), sigmas = euler.sigmas();
        assertEquals(999, t[0], 1e-4);
        assertEquals(0, t[9], 1e-4);
        assertEquals(14.6146, sigmas[0], 1e-3);
        assertEquals(0, sigmas[10]);
        for (int i = 1; i < sigmas.length; i++) assertTrue(sigmas[i] < sigmas[i - 1]);
    }

    @Test
    void karrasSigmasAreMonotoneBetweenTheExtremes() {
        SchedulerConfig c = SchedulerConfig.fromJson(((com.fasterxml.jackson.databind.node.ObjectNode) sd15().json().deepCopy())
                .put("use_karras_sigmas", true));
        EulerScheduler euler = new EulerScheduler(c, false);
        euler.setTimesteps(12);
        double[] s = euler.sigmas();
        assertEquals(14.6146, s[0], 1e-3);
        assertEquals(0.0292, s[11], 1e-3);
        for (int i = 1; i < s.length; i++) assertTrue(s[i] < s[i - 1]);
    }

    /** A model that knows the clean sample x0 exactly: every sampler must end at x0. */
    @ParameterizedTest
    @ValueSource(strings = {"ddim", "euler", "euler-a", "dpmpp-2m", "pndm"})
    void everySamplerRecoversACleanSampleFromAnOracle(String name) {
        for (String prediction : new String[] {"epsilon", "v_prediction"}) {
            var json = (com.fasterxml.jackson.databind.node.ObjectNode) sd15().json().deepCopy();
            json.put("prediction_type", prediction);
            json.put("set_alpha_to_one", true); // else DDIM/PNDM stop at ᾱ_0 < 1, a hair short of x0
            SchedulerConfig config = SchedulerConfig.fromJson(json);
            NoiseSchedule schedule = new NoiseSchedule(config);
            Scheduler scheduler = Schedulers.create(name, config);
            scheduler.setTimesteps(20);
            try (Scope s = Scope.inference()) {
                Tensor x0 = Ops.mul(org.bytedeco.pytorch.global.torch.randn(1, 4, 8, 8), 0.5);
                NoiseSource noise = shape -> org.bytedeco.pytorch.global.torch.randn(shape);
                Tensor x = Ops.mul(noise.randn(1, 4, 8, 8), scheduler.initNoiseSigma());
                double[] ts = scheduler.timesteps();
                for (int i = 0; i < ts.length; i++) {
                    Tensor input = scheduler.scaleModelInput(x, i);
                    // the oracle reads the noise level off the scaled input as the real model would
                    double t = ts[i];
                    double ac = interpolatedAlphaCumprod(schedule, t);
                    Tensor eps = Ops.div(Ops.sub(input, Ops.mul(x0, Math.sqrt(ac))), Math.sqrt(1 - ac));
                    Tensor out = prediction.equals("epsilon") ? eps
                            : Ops.sub(Ops.mul(eps, Math.sqrt(ac)), Ops.mul(x0, Math.sqrt(1 - ac)));
                    x = scheduler.step(out, i, x, noise);
                }
                double err = Ops.maxAbsDiff(x, x0);
                assertTrue(err < 2e-2, name + "/" + prediction + ": ended " + err + " away from x0");
            }
        }
    }

    private static double interpolatedAlphaCumprod(NoiseSchedule s, double t) {
        int lo = (int) Math.floor(t);
        int hi = Math.min(lo + 1, s.trainSteps() - 1);
        double w = t - lo;
        // interpolate in sigma space, as the Euler-family schedulers do
        double sl = Math.sqrt((1 - s.alphaCumprod(lo)) / s.alphaCumprod(lo)), sh = Math.sqrt((1 - s.alphaCumprod(hi)) / s.alphaCumprod(hi));
        double sigma = sl + (sh - sl) * w;
        return 1 / (sigma * sigma + 1);
    }

    @Test
    void schedulerConfigValuesAreCheckedWhenRead() throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        String[][] bad = {
                {"{\"num_train_timesteps\": 0}", "num_train_timesteps must be between 2 and 100000, got 0"},
                {"{\"num_train_timesteps\": \"1000\"}", "num_train_timesteps must be an integer"},
                {"{\"steps_offset\": 1000}", "steps_offset must be between 0 and 999, got 1000"},
                {"{\"beta_end\": 1.5}", "beta_end must be between 0 and 1, got 1.5"},
                {"{\"clip_sample\": \"yes\"}", "clip_sample must be true or false"},
                {"{\"beta_schedule\": \"sigmoid\"}", "unsupported beta_schedule 'sigmoid'"},
                // each changes the noise levels or the update: a model made with one is refused, not drawn wrong
                {"{\"rescale_betas_zero_snr\": true}", "rescale_betas_zero_snr must be false (the feature is not supported), got true"},
                {"{\"thresholding\": true}", "thresholding must be false (the feature is not supported), got true"},
                {"{\"trained_betas\": [0.1, 0.2]}", "trained_betas must be absent or null (the feature is not supported)"},
        };
        for (String[] b : bad) {
            var e = assertThrows(IllegalArgumentException.class, () -> SchedulerConfig.fromJson(json.readTree(b[0])), b[0]);
            assertTrue(e.getMessage().contains(b[1]), e.getMessage());
        }
        java.nio.file.Path file = java.nio.file.Files.createTempFile("scheduler", ".json");
        try {
            java.nio.file.Files.writeString(file, "{\"prediction_type\": \"sample\"}");
            var e = assertThrows(java.io.IOException.class, () -> SchedulerConfig.load(file));
            assertTrue(e.getMessage().startsWith(file + ": scheduler config: unsupported prediction_type 'sample'"), e.getMessage());
            java.nio.file.Files.writeString(file, "{\"prediction_type\": ");
            e = assertThrows(java.io.IOException.class, () -> SchedulerConfig.load(file));
            assertTrue(e.getMessage().startsWith(file + ": not valid JSON"), e.getMessage());
        } finally {
            java.nio.file.Files.delete(file);
        }
    }

    @Test
    void stepsThatPutATimestepPastTheScheduleAreRefused() {
        // SD's steps_offset 1 with "leading" spacing and 1000 steps would start at timestep 1000 of 0..999
        for (String name : List.of("ddim", "pndm", "euler", "dpmpp-2m")) {
            var json = (com.fasterxml.jackson.databind.node.ObjectNode) sd15().json().deepCopy();
            json.put("timestep_spacing", "leading").put("steps_offset", 1).put("skip_prk_steps", true);
            Scheduler s = Schedulers.create(name, SchedulerConfig.fromJson(json));
            int steps = name.equals("dpmpp-2m") ? 999 : 1000;
            var e = assertThrows(IllegalArgumentException.class, () -> s.setTimesteps(steps), name);
            assertTrue(e.getMessage().contains("steps_offset 1 put a timestep at 1000, past the last of the 1000 training timesteps"),
                    e.getMessage());
            s.setTimesteps(50);
        }
    }

    @Test
    void moreStepsThanTrainingTimestepsAreRefused() throws Exception {
        // "trailing" spacing with 4 steps of 2 timesteps reached timestep -1 (diffusers' Euler does too)
        var json = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper()
                .readTree("{\"num_train_timesteps\": 2, \"timestep_spacing\": \"trailing\", \"skip_prk_steps\": true}");
        for (String name : Schedulers.NAMES) {
            Scheduler s = Schedulers.create(name, SchedulerConfig.fromJson(json));
            var e = assertThrows(IllegalArgumentException.class, () -> s.setTimesteps(4), name);
            assertEquals("4 steps exceed the 2 training timesteps", e.getMessage());
            s.setTimesteps(2);
            for (double t : s.timesteps()) assertTrue(t >= 0 && t <= 1, name + ": " + t);
        }
    }

    @Test
    void unknownNamesAndSettingsAreClearErrors() {
        var e = assertThrows(IllegalArgumentException.class, () -> Schedulers.create("lms", sd15()));
        assertTrue(e.getMessage().contains("ddim, euler, euler-a, dpmpp-2m, pndm"));
        var json = (com.fasterxml.jackson.databind.node.ObjectNode) sd15().json().deepCopy();
        json.put("prediction_type", "sample");
        assertThrows(IllegalArgumentException.class, () -> Schedulers.create("ddim", SchedulerConfig.fromJson(json)));
    }

    private static SchedulerConfig withSetting(String key, String jsonValue) throws IOException {
        var json = (com.fasterxml.jackson.databind.node.ObjectNode) sd15().json().deepCopy();
        json.set(key, com.fasterxml.jackson.databind.json.JsonMapper.builder()
                .enable(com.fasterxml.jackson.core.json.JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS).build().readTree(jsonValue));
        return SchedulerConfig.fromJson(json);
    }

    /** Settings a scheduler reads in diffusers and computes here only at their defaults drew other pictures without a word. */
    @Test
    void settingsASchedulerComputesOnlyAtTheirDefaultsAreRefusedByIt() throws IOException {
        String[][] refused = {
                {"dpmpp-2m", "solver_type", "\"heun\""}, {"dpmpp-2m", "solver_order", "3"}, {"dpmpp-2m", "final_sigmas_type", "\"sigma_min\""},
                {"dpmpp-2m", "use_lu_lambdas", "true"}, {"dpmpp-2m", "lambda_min_clipped", "-5.1"}, {"dpmpp-2m", "euler_at_final", "true"},
                {"euler", "interpolation_type", "\"log_linear\""}, {"euler", "timestep_type", "\"continuous\""},
                {"euler", "sigma_min", "0.03"}, {"euler", "use_exponential_sigmas", "true"}, {"dpmpp-2m", "variance_type", "\"learned_range\""}};
        for (String[] r : refused) {
            SchedulerConfig config = withSetting(r[1], r[2]);
            var e = assertThrows(IllegalArgumentException.class, () -> Schedulers.create(r[0], config), r[1]);
            assertTrue(e.getMessage().startsWith("scheduler config: " + r[1] + " " + r[2] + " is not supported by the " + r[0] + " scheduler"), e.getMessage());
            Schedulers.create("ddim", config).setTimesteps(10); // another scheduler's key, read past as diffusers does
        }
        String[][] accepted = {{"dpmpp-2m", "solver_type", "\"midpoint\""}, {"dpmpp-2m", "solver_type", "\"bh2\""},
                {"dpmpp-2m", "algorithm_type", "\"deis\""}, {"dpmpp-2m", "lambda_min_clipped", "-Infinity"},
                {"dpmpp-2m", "variance_type", "null"}, {"dpmpp-2m", "variance_type", "\"fixed_small\""}, {"euler", "sigma_max", "null"},
                {"euler", "interpolation_type", "\"linear\""}, {"euler-a", "sigma_min", "0.03"}, {"euler-a", "interpolation_type", "\"log_linear\""}};
        for (String[] a : accepted) Schedulers.create(a[0], withSetting(a[1], a[2])).setTimesteps(10);
    }

    /** diffusers writes its configs with Python's json: a DPM-Solver config holds "lambda_min_clipped": -Infinity, which failed as invalid JSON. */
    @Test
    void aConfigWithPythonsInfinityReadsAndNonFiniteNumbersAreRefused(@org.junit.jupiter.api.io.TempDir java.nio.file.Path tmp) throws IOException {
        java.nio.file.Path file = tmp.resolve("scheduler_config.json");
        java.nio.file.Files.writeString(file, "{\"_class_name\": \"DPMSolverMultistepScheduler\", \"beta_schedule\": \"scaled_linear\", "
                + "\"beta_start\": 0.00085, \"beta_end\": 0.012, \"lambda_min_clipped\": -Infinity, \"variance_type\": null, \"steps_offset\": 1}");
        Schedulers.create("dpmpp-2m", SchedulerConfig.load(file)).setTimesteps(20);
        java.nio.file.Files.writeString(file, "{\"beta_start\": NaN}");
        var e = assertThrows(IOException.class, () -> SchedulerConfig.load(file));
        assertTrue(e.getMessage().contains("beta_start must be a finite number, got NaN"), e.getMessage());
    }

    /**
     * diffusers' StableDiffusionPipeline sets steps_offset 1 and a DDIM scheduler's clip_sample false in configs written
     * before those keys were (the first SD 1.x folders); read as written, DDIM clipped each x0 to [-1, 1] in latent space.
     */
    @Test
    void anOutOfDateConfigIsReadAsTheDiffusersPipelineUsesIt() throws IOException {
        SchedulerConfig old = SchedulerConfig.fromJson(new com.fasterxml.jackson.databind.ObjectMapper().readTree(
                "{\"_class_name\": \"DDIMScheduler\", \"beta_schedule\": \"scaled_linear\", \"beta_start\": 0.00085, \"beta_end\": 0.012}"));
        assertTrue(old.clipSample(SchedulerConfig.ClassDefaults.DDIM));
        List<String> notes = new java.util.ArrayList<>();
        SchedulerConfig used = old.asPipelineUsesIt(notes::add);
        assertEquals(1, used.stepsOffset());
        assertFalse(used.clipSample(SchedulerConfig.ClassDefaults.DDIM));
        assertEquals(List.of("the scheduler config is out of date: steps_offset 0 -> 1, clip_sample true -> false, as diffusers' pipeline sets it"), notes);
        assertSame(sd15(), sd15().asPipelineUsesIt(n -> fail(n)), "an up-to-date config as it is");
        SchedulerConfig pndm = SchedulerConfig.fromJson(new com.fasterxml.jackson.databind.ObjectMapper().readTree("{\"_class_name\": \"PNDMScheduler\", \"steps_offset\": 1}"));
        assertSame(pndm, pndm.asPipelineUsesIt(n -> fail(n)), "clip_sample is DDIM's (and DDPM's) to set");
        SchedulerConfig ddpm = SchedulerConfig.fromJson(new com.fasterxml.jackson.databind.ObjectMapper().readTree("{\"_class_name\": \"DDPMScheduler\", \"steps_offset\": 1}"));
        assertFalse(ddpm.asPipelineUsesIt(n -> {}).clipSample(SchedulerConfig.ClassDefaults.DDIM), "DDPM clips by default too");
    }
}
