"""Pillow pictures of synthetic catalog items: category -> shape, colour -> fill, pattern -> overlay,
and optionally a corner badge and a row of dots (marks that carry attributes a title states).

Shapes (drawn on a 100x100 design canvas, then scaled): feeding = bottle, diapering = square
pack, bath = tub, nursery = crib, toys = star, clothing = shirt. Patterns: plain, striped,
dotted, checked, drawn inside the shape in a lighter tint of the fill colour. A badge is a
small flat shape (:data:`BADGE_SHAPES`) in the top-left corner; dots are 1–4 discs along the
bottom edge, one per quarter of the width. Both sit in the margin a silhouette drawn at
``scale`` 0.8 leaves free.
"""
from __future__ import annotations

import math

from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
BACKGROUND: RGB = (246, 244, 240)
OUTLINE: RGB = (40, 40, 45)
SHAPES: tuple[str, ...] = ("feeding", "diapering", "bath", "nursery", "toys", "clothing")
PATTERNS: tuple[str, ...] = ("plain", "striped", "dotted", "checked")
BADGE_SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "hexagon", "pentagon")


def _star(cx: float, cy: float, r_out: float, r_in: float, points: int = 5) -> list[tuple[float, float]]:
    pts = []
    for k in range(points * 2):
        r = r_out if k % 2 == 0 else r_in
        a = -math.pi / 2 + k * math.pi / points
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def _draw_shape(draw: ImageDraw.ImageDraw, category: str, s: float, fill: int | RGB,
                outline: int | RGB | None, width: int) -> None:
    """Draw the category silhouette; coordinates are on a 100-unit canvas multiplied by ``s``."""
    def P(*xy: float) -> list[float]:
        return [v * s for v in xy]

    if category == "feeding":  # bottle: nipple, collar, body
        draw.ellipse(P(42, 8, 58, 24), fill=fill, outline=outline, width=width)
        draw.rectangle(P(36, 20, 64, 30), fill=fill, outline=outline, width=width)
        draw.rounded_rectangle(P(30, 28, 70, 92), radius=10 * s, fill=fill, outline=outline, width=width)
    elif category == "diapering":  # square pack with a handle
        draw.rectangle(P(38, 8, 62, 20), outline=outline if outline is not None else fill, width=max(width, int(4 * s)))
        draw.rectangle(P(14, 18, 86, 90), fill=fill, outline=outline, width=width)
    elif category == "bath":  # tub: half ellipse on feet
        draw.chord(P(8, 10, 92, 86), 0, 180, fill=fill, outline=outline, width=width)
        draw.rectangle(P(8, 44, 92, 50), fill=fill, outline=outline, width=width)
        draw.ellipse(P(18, 82, 30, 94), fill=fill, outline=outline, width=width)
        draw.ellipse(P(70, 82, 82, 94), fill=fill, outline=outline, width=width)
    elif category == "nursery":  # crib: rails, bars, legs
        draw.rectangle(P(10, 20, 90, 30), fill=fill, outline=outline, width=width)
        draw.rectangle(P(10, 70, 90, 80), fill=fill, outline=outline, width=width)
        for x in range(10, 91, 13):
            draw.rectangle(P(x, 20, x + 6, 80), fill=fill, outline=outline, width=width)
        draw.rectangle(P(10, 12, 18, 94), fill=fill, outline=outline, width=width)
        draw.rectangle(P(82, 12, 90, 94), fill=fill, outline=outline, width=width)
    elif category == "toys":  # star
        draw.polygon(_star(50 * s, 53 * s, 45 * s, 19 * s), fill=fill, outline=outline, width=width)
    elif category == "clothing":  # T-shirt
        pts = [(30, 10), (42, 14), (58, 14), (70, 10), (94, 30), (82, 44), (74, 38),
               (74, 92), (26, 92), (26, 38), (18, 44), (6, 30)]
        draw.polygon([(x * s, y * s) for x, y in pts], fill=fill, outline=outline, width=width)
    else:
        draw.ellipse(P(12, 12, 88, 88), fill=fill, outline=outline, width=width)


def _tint(rgb: RGB, amount: float) -> RGB:
    """Mix ``rgb`` toward white (amount > 0) or black (amount < 0)."""
    if amount >= 0:
        return tuple(int(round(c + (255 - c) * amount)) for c in rgb)  # type: ignore[return-value]
    return tuple(int(round(c * (1 + amount))) for c in rgb)  # type: ignore[return-value]


def _pattern_layer(size: int, rgb: RGB, pattern: str) -> Image.Image:
    """``[size, size]`` RGB fill: the colour with the pattern drawn in a lighter tint."""
    layer = Image.new("RGB", (size, size), rgb)
    draw = ImageDraw.Draw(layer)
    ink = _tint(rgb, 0.6)
    step = max(size // 8, 4)
    if pattern == "striped":
        for y in range(0, size, step):
            draw.rectangle([0, y, size, y + step // 2 - 1], fill=ink)
    elif pattern == "dotted":
        r = max(step // 4, 1)
        for yi, y in enumerate(range(step // 2, size, step)):
            for x in range(step // 2 + (step // 2 if yi % 2 else 0), size, step):
                draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)
    elif pattern == "checked":
        for y in range(0, size, step):
            for x in range(0, size, step):
                if (x // step + y // step) % 2 == 0:
                    draw.rectangle([x, y, x + step - 1, y + step - 1], fill=ink)
    return layer


def _polygon(cx: float, cy: float, r: float, corners: int, turn: float) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(turn + 2 * math.pi * k / corners), cy + r * math.sin(turn + 2 * math.pi * k / corners))
            for k in range(corners)]


def _draw_badge(draw: ImageDraw.ImageDraw, shape: str, rgb: RGB, s: float) -> None:
    """A flat ``shape`` filled with ``rgb`` in the top-left corner (box 3..21 of 100 units)."""
    cx = cy = 12.0 * s
    r = 9.0 * s
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
    elif shape == "square":
        draw.rectangle([cx - 0.85 * r, cy - 0.85 * r, cx + 0.85 * r, cy + 0.85 * r], fill=rgb)
    elif shape in ("triangle", "diamond", "hexagon", "pentagon"):
        corners = {"triangle": 3, "diamond": 4, "hexagon": 6, "pentagon": 5}[shape]
        draw.polygon(_polygon(cx, cy, r, corners, -math.pi / 2), fill=rgb)
    else:
        raise ValueError(f"unknown badge shape {shape!r} (choose from {', '.join(BADGE_SHAPES)})")


def _draw_dots(draw: ImageDraw.ImageDraw, count: int, rgb: RGB, s: float) -> None:
    """``count`` (1–4) discs of ``rgb`` along the bottom edge, the k-th centred in the k-th quarter."""
    if not 1 <= count <= 4:
        raise ValueError(f"dots must be 1..4, got {count}")
    r = 4.5 * s
    for k in range(count):
        cx, cy = (12.5 + 25.0 * k) * s, 94.5 * s
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)


def render_item(category: str, rgb: RGB, pattern: str, image_size: int = 48,
                scale: float = 1.0, supersample: int = 2, badge: tuple[str, RGB] | None = None,
                dots: tuple[int, RGB] | None = None) -> Image.Image:
    """Picture of one item: ``[image_size, image_size]`` RGB PIL image.

    ``scale`` (about 0.75–1.0) shrinks the silhouette around the centre. ``badge`` =
    ``(shape, rgb)`` draws a flat corner badge, ``dots`` = ``(count, rgb)`` a row of 1–4 dots
    along the bottom edge (both on top of the silhouette).
    """
    big = image_size * supersample
    canvas = int(round(big * scale))
    mask = Image.new("L", (canvas, canvas), 0)
    _draw_shape(ImageDraw.Draw(mask), category, canvas / 100.0, fill=255, outline=None, width=1)
    fill = _pattern_layer(canvas, rgb, pattern)
    img = Image.new("RGB", (big, big), BACKGROUND)
    offset = ((big - canvas) // 2, (big - canvas) // 2)
    img.paste(fill, offset, mask)
    edge_mask = Image.new("L", (canvas, canvas), 0)
    _draw_shape(ImageDraw.Draw(edge_mask), category, canvas / 100.0, fill=None, outline=255,
                width=max(1, supersample))
    img.paste(Image.new("RGB", (canvas, canvas), OUTLINE), offset, edge_mask)
    if badge is not None or dots is not None:
        draw = ImageDraw.Draw(img)
        if badge is not None:
            _draw_badge(draw, badge[0], badge[1], big / 100.0)
        if dots is not None:
            _draw_dots(draw, int(dots[0]), dots[1], big / 100.0)
    return img.resize((image_size, image_size), Image.LANCZOS) if supersample > 1 else img


__all__ = ["render_item", "SHAPES", "PATTERNS", "BADGE_SHAPES", "BACKGROUND"]
