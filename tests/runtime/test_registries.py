"""The runtime's registries hold exactly the names the compiler knows (``compiler.zoo``).

The compiler checks recipes without importing torch, from its own tables; the runtime builds
from its registries. If the two drift, ``kdr check`` accepts what ``kdr run`` cannot build, or
rejects what it could.
"""

from __future__ import annotations

import pytest

from compiler.zoo import BUILTIN_MODELS, DATASETS, ZOO
from runtime.data import SOURCES, data_names, register_source
from runtime.models import FAMILIES, model_names, register_builtin, zoo_names


def test_data_sources_are_the_compilers_datasets() -> None:
    assert sorted(SOURCES) == sorted(DATASETS) == data_names()


def test_builtin_model_families_are_the_compilers_builtins() -> None:
    builtins = [name for family in FAMILIES.values() if family.builtin for name in family.names()]
    assert sorted(builtins) == sorted(BUILTIN_MODELS)


def test_zoo_family_is_the_compilers_zoo_and_torchvisions_list() -> None:
    from torchvision import models

    assert zoo_names() == sorted(ZOO) == sorted(models.list_models(module=models))
    assert list(ZOO) == sorted(ZOO)  # the compiler lists it sorted, as `kdr check` shows it


def test_every_name_the_registries_own_is_a_compiler_name() -> None:
    assert sorted(model_names()) == sorted([*BUILTIN_MODELS, *ZOO])


def test_registering_a_name_the_compiler_does_not_know_fails() -> None:
    with pytest.raises(ValueError, match="DATASETS"):
        register_source("not_a_dataset")(lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="BUILTIN_MODELS"):
        register_builtin("not_a_model")(lambda: None)  # type: ignore[arg-type,return-value]
    assert "not_a_dataset" not in SOURCES and "not_a_model" not in FAMILIES
