"""The CPU kernel sets `make test-kernels` runs the float-sensitive tests under."""
from tests.capabilities import supported


def test_capabilities_follow_the_cpus_flags():
    assert supported("processor: 0\nflags\t: fpu sse2\n") == ["default"]
    assert supported("flags\t: sse2 avx2 fma\n") == ["default", "avx2"]
    flags = "flags\t: avx2 fma avx512f avx512bw avx512vl avx512dq\n"
    assert supported(flags) == ["default", "avx2", "avx512"]
    assert supported("flags\t: avx2 fma avx512f\n") == ["default", "avx2"]   # avx512f alone is not enough
    assert supported("") == ["default"]
