"""Model cards of a board's trained rows and task models: what each was trained on, how that data relates
to the evaluated set, and what the training cost.

Cards are made when a board is rendered, from the files training wrote (``training.json`` beside a learned
codec's weights) and the task models' provenance, and are stored in ``results.json``
(``provenance.model_cards``), so a board's README, the site and ``taskcodec merge`` read them from the board
alone. A card never guesses: a fact the files do not hold is ``None`` and shown as unknown. How a training
split relates to the evaluated one is the dataset plugin's knowledge (:meth:`taskcodec.Dataset.split_relation`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

#: (dataset name, training split, evaluated split) -> the dataset plugin's statement, or None
Relation = Callable[[str, str, str], "str | None"]


def overlap_statement(trained: dict[str, Any] | None, evaluated: dict[str, Any], relation: Relation | None = None) -> str:
    """How the training data relates to the evaluated set, from dataset names, splits and fingerprints."""
    if not trained or not trained.get("dataset"):
        return "unknown: the training data is not recorded"
    if trained.get("fingerprint") and trained.get("fingerprint") == evaluated.get("fingerprint"):
        return "TRAINED ON THE EVALUATED IMAGES (same dataset fingerprint)"
    if str(trained["dataset"]).lower() != str(evaluated.get("name", "")).lower():
        return f"another dataset ({trained['dataset']}); its overlap with {evaluated.get('name')} is not measured"
    if trained.get("split") == evaluated.get("split"):
        return f"TRAINED ON THE EVALUATED SPLIT ({trained.get('split')})"
    known = relation(str(evaluated.get("name")), str(trained.get("split")), str(evaluated.get("split"))) if relation else None
    return known or (f"another split of the same dataset ({trained.get('split')} vs the evaluated "
                     f"{evaluated.get('split')}); shared people or sources not measured")


def _codec_card(row: str, models: str, repo_root: Path, evaluated: dict[str, Any], relation: Relation | None):
    path = repo_root / models / "training.json"
    card: dict[str, Any] = {"row": row, "kind": "codec", "weights": models, "mode": None, "config": None,
                            "trained_on": None, "cost": None}
    if not path.is_file():
        return {**card, "overlap": f"unknown: {models}/training.json is not in this checkout"}
    record = json.loads(path.read_text(encoding="utf-8"))
    points = record.get("rate_points") if isinstance(record.get("rate_points"), dict) else {}
    first = next(iter(points.values()), {})
    data = first.get("training_data") or None
    training = first.get("training") or {}
    hardware = training.get("hardware") or {}
    return {**card, "mode": record.get("mode"), "config": record.get("config"), "trained_on": data,
            "overlap": overlap_statement(data, evaluated, relation),
            "cost": {"seconds": training.get("seconds"), "images_per_s": training.get("images_per_s"),
                     "steps": training.get("steps"), "batch_size": training.get("batch_size"),
                     "hardware": ", ".join(f"{k} {v}" for k, v in hardware.items()) or None}}


def _task_card(row: str, task: dict[str, Any], evaluated: dict[str, Any], relation: Relation | None):
    weights = task.get("weights_file") or (task.get("checkpoint") or {}).get("path")
    card = {"row": row, "kind": "task model", "weights": weights, "weights_sha256": task.get("weights_sha256"),
            "mode": None, "config": None}
    if task.get("train_split") or task.get("train_fingerprint"):
        data = {"dataset": evaluated.get("name"), "split": task.get("train_split"),
                "fingerprint": task.get("train_fingerprint"), "images": task.get("train_images")}
        return {**card, "trained_on": data, "overlap": overlap_statement(data, evaluated, relation),
                "cost": {"seconds": task.get("train_time_s"), "steps": task.get("steps"), "device": task.get("device")}}
    return {**card, "trained_on": None, "cost": None,
            "overlap": "trained outside taskcodec: its training data is the weights' source's (not recorded here)"}


def board_model_cards(provenance: dict[str, Any], repo_root: Path, relation: Relation | None = None) -> list[dict]:
    """A card per task model (the board's, and each row's own) and per learned codec row (its ``models``)."""
    evaluated = provenance.get("dataset") or {}
    cards = []
    if provenance.get("task"):
        cards.append(_task_card("(the board's task model)", provenance["task"], evaluated, relation))
    for row, task in (provenance.get("row_tasks") or {}).items():
        cards.append(_task_card(row, task, evaluated, relation))
    for entry in (provenance.get("config") or {}).get("codecs") or []:
        models = (entry.get("options") or {}).get("models") if isinstance(entry, dict) else None
        if isinstance(models, str):
            cards.append(_codec_card(entry.get("row", entry.get("name")), models, repo_root, evaluated, relation))
    return _joint_task_models(cards, provenance.get("row_tasks") or {})


def _joint_task_models(cards: list[dict], row_tasks: dict[str, Any]) -> list[dict]:
    """A row's task model trained jointly with that row's codec (mode joint) was trained on the codec's data:
    its card says so, as does the card of any other row evaluated with the same weights."""
    joint = {}
    for card in cards:
        task = row_tasks.get(card["row"]) or {}
        if card["kind"] == "codec" and card.get("mode") == "joint" and card.get("trained_on") and task.get("weights_sha256"):
            joint[task["weights_sha256"]] = card
    out = []
    for card in cards:
        source = joint.get(card.get("weights_sha256")) if card["kind"] == "task model" and not card["trained_on"] else None
        if source is not None:
            card = {**card, "mode": "joint", "trained_on": source["trained_on"], "overlap": source["overlap"],
                    "cost": {"trained with": f"codec row {source['row']} (its cost)"}}
        out.append(card)
    return out


def registry_relation(registry: Any) -> Relation:
    """:meth:`Dataset.split_relation` of the registered dataset plugins (None for an unknown dataset)."""
    from .errors import DuplicatePluginError, UnknownPluginError

    def relation(dataset: str, train_split: str, eval_split: str) -> str | None:
        try:
            cls = registry.get("dataset", dataset).target
        except (UnknownPluginError, DuplicatePluginError):  # a board of a dataset plugin not installed here: the generic statement
            return None
        return cls.split_relation(train_split, eval_split)

    return relation
