# Every target bootstraps .venv first; on this machine pip takes torch 2.14.1 /
# torchvision 0.29.1 from the local wheel store (other torchvision builds fail to import).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  := torch==2.14.1 torchvision==0.29.1

CLASS  ?= golden retriever
ARGS   ?=

.PHONY: venv test discover bench clean

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

clean:
	rm -rf $(VENV) .pytest_cache
