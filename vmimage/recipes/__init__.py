"""Recipes by name. Each lives in its own module, imported only when asked for."""

from __future__ import annotations

import importlib

from vmimage.recipes.base import Recipe

RECIPES = {
    "debian": "vmimage.recipes.debian:DebianRecipe",
    "alpine": "vmimage.recipes.alpine:AlpineRecipe",
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(sorted(RECIPES))}")
    module, _, cls = RECIPES[name].partition(":")
    recipe: Recipe = getattr(importlib.import_module(module), cls)()
    return recipe
