"""Human names of a victim's classes, so a label map can say which classes each target reads.

ImageNet's come from timm (installed with `reprog[imagenet]`); other victims are named by index.
"""

from typing import Any


def victim_class_names(spec: dict[str, Any]) -> list[str]:
    """One short name per victim class: ImageNet's first synonym ("tench") for a 1000-class victim."""
    n = int(spec["num_classes"])
    if n == 1000:
        try:
            from timm.data import ImageNetInfo  # optional: the imagenet extra
        except ImportError:
            pass
        else:
            info = ImageNetInfo()
            return [info.index_to_description(i).split(",")[0] for i in range(n)]
    return [f"class {i}" for i in range(n)]


def describe_reads(reads: list[list[int]], names: list[str], target_names: list[str] | None = None) -> list[dict]:
    """[{target, victim_classes, names}] for a label map's `reads()`, ready for program.json and the log."""
    target_names = target_names or [str(t) for t in range(len(reads))]
    return [
        {"target": target_names[t], "victim_classes": classes, "names": [names[c] for c in classes]}
        for t, classes in enumerate(reads)
    ]
