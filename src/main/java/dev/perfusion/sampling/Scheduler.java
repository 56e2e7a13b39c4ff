package dev.perfusion.sampling;

import org.bytedeco.pytorch.Tensor;

/** One sampler: its timesteps, input scaling and update rule, as the diffusers scheduler of the same name. */
public interface Scheduler {
    void setTimesteps(int steps);

    /** The model timestep of each step (ints for DDIM/PNDM/DPM-Solver, floats for Euler). */
    double[] timesteps();

    /** What unit noise is multiplied by to start sampling; 1 for samplers that work in x_t (not sigma) space. */
    default double initNoiseSigma() { return 1.0; }

    /** The model's input at a step; unchanged for samplers that work in x_t space. */
    default Tensor scaleModelInput(Tensor sample, int stepIndex) { return sample; }

    /** One update from step {@code stepIndex} to the next; {@code noise} is used only by stochastic samplers. */
    Tensor step(Tensor modelOutput, int stepIndex, Tensor sample, NoiseSource noise);
}
