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
	$(PY) benchmarks/bench_penalty.py
	$(PY) benchmarks/bench_render.py
	$(PY) benchmarks/bench_score.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_threads.py
	$(PY) benchmarks/bench_weights.py
	$(PY) benchmarks/bench_view.py
	$(PY) benchmarks/bench_methods.py
	$(PY) benchmarks/bench_learn.py

# The README's screenshot of `view`, taken by its browser test.
screenshots: $(STAMP)
	BIGGAN_DIRECTIONS_SCREENSHOT=docs/view.png $(PY) -m pytest -q tests/test_view.py -k page_slider

clean:
	rm -rf $(VENV) .pytest_cache
