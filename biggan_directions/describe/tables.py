"""The printed table of a run's labels (describe, score's label column reads the same records)."""
from __future__ import annotations

from typing import Any, Sequence

# the measure printed beside each label, and its format
SHOWN = {"shift-x": ("shift_x_fraction", "{:+.3f} of the width"),
         "shift-y": ("shift_y_fraction", "{:+.3f} of the height"),
         "zoom": ("scale_ratio", "x{:.3f}"), "rotation": ("rotation_degrees", "{:+.1f} deg"),
         "brightness": ("brightness_delta", "{:+.1f} L*"), "contrast": ("contrast_ratio", "x{:.3f}"),
         "saturation": ("saturation_ratio", "x{:.3f} chroma"),
         "background": ("background_share", "{:.0%} outside the object")}


def headline(d: dict[str, Any]) -> str:
    """The measure that goes with a record's label, as text ('x1.403', '+29.9 deg')."""
    m = d.get("measures") or {}
    label = d.get("label", "")
    if label.startswith("color:"):
        return f"{m.get('color_shift', 0):.1f} a*b* towards {m.get('color_hue', '?')}"
    name, fmt = SHOWN.get(label, (None, ""))
    if name is None or m.get(name) is None:
        return f"Delta E {m['delta_e']:.1f}" if m.get("delta_e") is not None else ""
    return fmt.format(m[name])


def format_descriptions(descriptions: Sequence[dict[str, Any]], *, limit: int | None = None) -> str:
    """One row per direction: index, label, confidence, second label, the label's measure."""
    lines = [f"{'dir':>4}  {'label':<15} {'conf':>5}  {'second':<15} measure"]
    shown = descriptions if limit is None else descriptions[:limit]
    for d in shown:
        lines.append(f"{d['direction']:>4}  {d['label']:<15} {d['label_confidence']:>5.2f}  "
                     f"{d.get('second_label') or '-':<15} {headline(d)}")
    if len(shown) < len(descriptions):
        lines.append(f"  ... {len(descriptions) - len(shown)} more in the file")
    counts: dict[str, int] = {}
    for d in descriptions:
        counts[d["label"]] = counts.get(d["label"], 0) + 1
    lines.append("labels: " + ", ".join(f"{n} {label}" for label, n in
                                         sorted(counts.items(), key=lambda x: (-x[1], x[0]))))
    return "\n".join(lines)
