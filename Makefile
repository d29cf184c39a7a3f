# Every target bootstraps .venv first; on this machine pip takes torch 2.14.1 /
# torchvision 0.29.1 from the local wheel store (other torchvision builds fail to import).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  := torch==2.14.1 torchvision==0.29.1

CLASS  ?= golden retriever
ARGS   ?=

.PHONY: venv test discover bench screenshots clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]' $(TORCH)
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

discover: $(STAMP)
	$(VENV)/bin/biggan-directions discover --class "$(CLASS)" $(ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.bench_penalty
	$(PY) -m benchmarks.bench_render
	$(PY) -m benchmarks.bench_score
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
