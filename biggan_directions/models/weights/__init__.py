"""The offline-first weight store: find a BigGAN in weights/, fetch it once, verify it, load it.

Modules: store (folder layout, checksums, listing), checkpoint (strict loading of config +
weights, safetensors conversion), sources (the package's URLs and the Hub), load (the store,
then each source), imports (files a user downloaded by hand).
"""
from .checkpoint import save_biggan
from .imports import import_weights
from .load import fetch_model, load_biggan, verify_available
from .sources import (BASE_URL_ENV, HUB_MIRRORS, HUB_REPO_ENV, TIMEOUT_ENV, Source, model_urls,
                      sources_for)
from .store import (CHECKSUMS_NAME, CONFIG_NAME, DEFAULT_MODEL, KNOWN_MODELS, MODEL_FILES,
                    SAFETENSORS_NAME, WEIGHTS_DIR_ENV, WEIGHTS_NAME, StoreEntry,
                    default_weights_dir, list_store, store_folder, verify_checksums,
                    write_checksums)


__all__ = ["BASE_URL_ENV", "CHECKSUMS_NAME", "CONFIG_NAME", "HUB_MIRRORS", "HUB_REPO_ENV",
           "DEFAULT_MODEL", "KNOWN_MODELS", "MODEL_FILES", "SAFETENSORS_NAME", "Source", "StoreEntry",
           "TIMEOUT_ENV", "WEIGHTS_DIR_ENV", "WEIGHTS_NAME", "default_weights_dir", "fetch_model",
           "import_weights", "list_store", "load_biggan", "model_urls", "save_biggan",
           "sources_for", "store_folder", "verify_available", "verify_checksums",
           "write_checksums"]
