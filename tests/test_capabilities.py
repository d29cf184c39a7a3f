"""The CPU kernel sets `make test-kernels` runs the float-sensitive tests under."""
from tests.capabilities import besides, supported


def test_capabilities_follow_the_cpus_flags():
    assert supported("processor: 0\nflags\t: fpu sse2\n") == ["default"]
    assert supported("flags\t: sse2 avx2 fma\n") == ["default", "avx2"]
    flags = "flags\t: avx2 fma avx512f avx512bw avx512vl avx512dq\n"
    assert supported(flags) == ["default", "avx2", "avx512"]
    assert supported("flags\t: avx2 fma avx512f\n") == ["default", "avx2"]   # avx512f alone is not enough
    assert supported("") == ["default"]


def test_test_kernels_leaves_out_the_capability_make_test_ran_under():
    flags = "flags\t: avx2 fma avx512f avx512bw avx512vl avx512dq\n"
    assert besides("avx512", flags) == ["default", "avx2"]
    assert besides("avx2", flags) == ["default", "avx512"]          # ATEN_CPU_CAPABILITY=avx2 set
    assert besides("default", "flags\t: sse2\n") == []
