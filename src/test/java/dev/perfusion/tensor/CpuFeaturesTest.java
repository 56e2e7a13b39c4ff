package dev.perfusion.tensor;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class CpuFeaturesTest {
    private static List<String> cpuinfo(String flags) {
        return List.of("processor\t: 0", "vendor_id\t: AuthenticAMD", "flags\t\t: " + flags, "bugs\t\t: sysret_ss_attrs");
    }

    @Test
    void theClassIsTheRichestInstructionSetTheFlagsName() {
        assertEquals("amx", CpuFeatures.isa(cpuinfo("fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile")));
        assertEquals("avx512-bf16", CpuFeatures.isa(cpuinfo("fpu sse avx2 avx512f avx512_vnni avx512_bf16")), "Zen 4");
        assertEquals("avx512", CpuFeatures.isa(cpuinfo("fpu sse avx2 avx512f avx512_vnni")));
        assertEquals("avx2", CpuFeatures.isa(cpuinfo("fpu sse avx2 fma")));
        assertEquals("other", CpuFeatures.isa(cpuinfo("fpu sse sse2")));
        assertEquals("other", CpuFeatures.isa(List.of()), "no /proc/cpuinfo");
    }

    @Test
    void aFlagCountsOnlyAsAWholeWord() {
        assertEquals("avx512", CpuFeatures.isa(cpuinfo("avx512f avx512_bf16x amx_tilex")));
    }
}
