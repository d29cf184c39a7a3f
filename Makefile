# Every target bootstraps .venv first; on this machine pip takes torch 2.14.1 /
# torchvision 0.29.1 from the local wheel store (other torchvision builds fail to import).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  := torch==2.14.1 torchvision==0.29.1

CLASS  ?= golden retriever
ARGS   ?=

.PHONY: venv test test-kernels discover bench screenshots clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]' $(TORCH)
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

# The float-sensitive tests (selection and patience, the penalty, the fixed evaluation, resume,
# scoring, verdicts, describing's measures, tracking, pooled runs and transfer) again under every
# other CPU kernel set this CPU supports (tests/capabilities.py): float sums round differently
# under each, as on users' CPUs. `make test` has run them under the one torch picks here (the
# best, or ATEN_CPU_CAPABILITY when set), so that one is left out: run `make test` first, as
# .ci/run does. Each gets its own inductor cache: kernels compiled under one capability crash
# under another.
KERNEL_TESTS := tests/test_selection.py tests/test_penalty.py tests/test_evaluation.py \
                tests/test_discover.py tests/test_faults_runs.py tests/test_score.py \
                tests/test_numbers.py tests/test_describe.py tests/test_tracking.py \
                tests/test_pooled.py tests/test_transfer.py
test-kernels: $(STAMP)
	@set -e; for cap in $$($(PY) -m tests.capabilities --besides-native); do \
	  cache=$$(mktemp -d); \
	  echo "== ATEN_CPU_CAPABILITY=$$cap"; \
	  ATEN_CPU_CAPABILITY=$$cap TORCHINDUCTOR_CACHE_DIR=$$cache $(PY) -m pytest -q -p no:cacheprovider $(KERNEL_TESTS) || { rm -rf $$cache; exit 1; }; \
	  rm -rf $$cache; \
	done

discover: $(STAMP)
	$(VENV)/bin/biggan-directions discover --class "$(CLASS)" $(ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.bench_penalty
	$(PY) -m benchmarks.bench_render
	$(PY) -m benchmarks.bench_score
	$(PY) -m benchmarks.bench_describe
	$(PY) -m benchmarks.bench_eval
	$(PY) -m benchmarks.bench_threads
	$(PY) -m benchmarks.bench_weights
	$(PY) -m benchmarks.bench_view
	$(PY) -m benchmarks.bench_methods
	$(PY) -m benchmarks.bench_learn

# The README's screenshot of `view`, taken by its browser test.
screenshots: $(STAMP)
	BIGGAN_DIRECTIONS_SCREENSHOT=docs/view.png $(PY) -m pytest -q tests/test_view.py -k page_slider

clean:
	rm -rf $(VENV) .pytest_cache
