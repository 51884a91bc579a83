"""A small RGB canvas written as PNG with zlib alone: rectangles, polylines, heat maps and 5x7 text.

It lets ``acula demo`` and ``acula screen --plot`` draw on a device install, where matplotlib (a plotting
stack of tens of MB that no device-side code needs) is not a dependency.  Coordinates are pixels, origin top
left; colours are (r, g, b) in 0..255.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

Colour = tuple[int, int, int]
BLACK, WHITE, GREY, LIGHT = (0, 0, 0), (255, 255, 255), (120, 120, 120), (225, 225, 225)
RED, BLUE, ORANGE = (214, 39, 40), (31, 119, 180), (255, 127, 14)

#: 5x7 glyphs, one string of 7 rows of 5 pixels each ('#' ink); lower case is drawn as upper case.
_GLYPHS = {
    "A": ".###.#...##...#######...##...##...#", "B": "####.#...#####.#...##...##...#####.",
    "C": ".###.#...##....#....#....#...#.###.", "D": "####.#...##...##...##...##...#####.",
    "E": "######....####.#....#....#....#####", "F": "######....####.#....#....#....#....",
    "G": ".###.#...##....#.####...##...#.####", "H": "#...##...#######...##...##...##...#",
    "I": ".###...#....#....#....#....#...###.", "J": "..###...#....#....#....##..#..##...",
    "K": "#...##..#.###..#..#.#...##...##...#", "L": "#....#....#....#....#....#....#####",
    "M": "#...###.###.#.##...##...##...##...#", "N": "#...###..##.#.##..###...##...##...#",
    "O": ".###.#...##...##...##...##...#.###.", "P": "####.#...##...#####.#....#....#....",
    "Q": ".###.#...##...##...##.#.##..#..##.#", "R": "####.#...##...#####.#.#..#..#.#...#",
    "S": ".####.....#.....###.....#.....####.", "T": "#####..#....#....#....#....#....#..",
    "U": "#...##...##...##...##...##...#.###.", "V": "#...##...##...##...##...#.#.#...#..",
    "W": "#...##...##...##.#.##.#.##.#..#.#..", "X": "#...##...#.#.#...#...#.#.#...##...#",
    "Y": "#...##...#.#.#...#....#....#....#..", "Z": "#####....#...#...#...#...#....#####",
    "0": ".###.#...##..###.#.###..##...#.###.", "1": "..#...##....#....#....#....#...###.",
    "2": ".###.#...#....#...#...#...#...#####", "3": "#####...#...#.....#.....##...#.###.",
    "4": "...#...##..#.#.#..#.#####...#....#.", "5": "######....####.....#....##...#.###.",
    "6": "..##..#...#....####.#...##...#.###.", "7": "#####....#...#...#...#....#....#...",
    "8": ".###.#...##...#.###.#...##...#.###.", "9": ".###.#...##...#.####....#...#..##..",
    " ": "." * 35, ".": "." * 25 + ".##...##..", ",": "." * 25 + ".##...#...",
    ":": "......##...##........##...##.......", "-": "." * 15 + "#####" + "." * 15,
    "(": "...#...#...#....#....#.....#.....#.", ")": ".#.....#.....#....#....#...#...#...",
    "/": ".........#...#...#...#...#.........", "%": "##...##..#...#...#...#...#..##...##",
    "=": "." * 10 + "#####.....#####" + "." * 10, "+": ".......#....#..#####..#....#.......",
    "_": "." * 30 + "#####", "'": "..#....#....#......................",
    "[": ".###..#....#....#....#....#....###.", "]": ".###....#....#....#....#....#..###.",
    "<": "...#...#...#...#.....#.....#.....#.", ">": ".#.....#.....#.....#...#...#...#...",
    "?": ".###.#...#....#...#...#.........#..", "!": "..#....#....#....#....#.........#..",
    "#": ".#.#..#.#.#####.#.#.#####.#.#..#.#.", "*": ".....#.#.#.###.#####.###.#.#.#.....",
    "&": ".##..#..#.#.#...#...#.#.##..#..##.#", "~": "." * 10 + ".#.#.#.#.#" + "." * 15,
}
GLYPH_W, GLYPH_H = 5, 7


class Canvas:
    """An RGB image of shape (height, width, 3), uint8, white to start with."""

    def __init__(self, width: int, height: int) -> None:
        self.pixels = np.full((height, width, 3), 255, dtype=np.uint8)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour: Colour, alpha: float = 1.0) -> None:
        """Fill [x0, x1) x [y0, y1), clipped to the canvas; ``alpha`` < 1 blends over what is there."""
        a, b = max(0, int(round(min(x0, x1)))), min(self.width, int(round(max(x0, x1))))
        c, d = max(0, int(round(min(y0, y1)))), min(self.height, int(round(max(y0, y1))))
        if a >= b or c >= d:
            return
        region = self.pixels[c:d, a:b].astype(np.float32)
        self.pixels[c:d, a:b] = np.round(region * (1 - alpha) + np.array(colour, np.float32) * alpha).astype(np.uint8)

    def hline(self, x0: float, x1: float, y: float, colour: Colour, dashed: bool = False) -> None:
        if dashed:
            for x in range(int(x0), int(x1), 8):
                self.rect(x, y, min(x + 5, x1), y + 1, colour)
        else:
            self.rect(x0, y, x1, y + 1, colour)

    def vline(self, x: float, y0: float, y1: float, colour: Colour) -> None:
        self.rect(x, y0, x + 1, y1, colour)

    def polyline(self, xs: np.ndarray, ys: np.ndarray, colour: Colour) -> None:
        """Connect the points (xs[i], ys[i]) with straight segments, one pixel wide."""
        for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:], strict=True):
            n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
            px = np.round(np.linspace(x0, x1, n + 1)).astype(int)
            py = np.round(np.linspace(y0, y1, n + 1)).astype(int)
            ok = (px >= 0) & (px < self.width) & (py >= 0) & (py < self.height)
            self.pixels[py[ok], px[ok]] = colour

    def image(self, x0: int, y0: int, values: np.ndarray) -> None:
        """Paste an (h, w, 3) uint8 image with its top left corner at (x0, y0)."""
        h, w = values.shape[:2]
        self.pixels[y0 : y0 + h, x0 : x0 + w] = values[: self.height - y0, : self.width - x0]

    def text(self, x: float, y: float, text: str, colour: Colour = BLACK, scale: int = 1, anchor: str = "left",
             vertical: bool = False) -> None:
        """Draw ``text`` in the 5x7 font; ``anchor`` left, centre or right of x; ``vertical`` reads bottom up."""
        advance = (GLYPH_W + 1) * scale
        width = len(text) * advance - scale
        bitmap = np.zeros((GLYPH_H * scale, max(1, width)), dtype=bool)
        for i, ch in enumerate(text.upper()):
            rows = _GLYPHS.get(ch, _GLYPHS["?"])
            glyph = np.array([c == "#" for c in rows], dtype=bool).reshape(GLYPH_H, GLYPH_W)
            bitmap[:, i * advance : i * advance + GLYPH_W * scale] = np.kron(glyph, np.ones((scale, scale), bool))
        if vertical:
            bitmap = np.rot90(bitmap)
        h, w = bitmap.shape
        shift = {"left": 0, "centre": w // 2, "right": w}[anchor] if not vertical else w // 2
        top = int(y) - (h // 2 if vertical else 0)
        left = int(x) - shift
        ys, xs = np.nonzero(bitmap)
        ys, xs = ys + top, xs + left
        ok = (xs >= 0) & (xs < self.width) & (ys >= 0) & (ys < self.height)
        self.pixels[ys[ok], xs[ok]] = colour

    def png(self) -> bytes:
        """The image as PNG bytes (8-bit RGB, no filter, zlib level 6)."""
        h, w = self.height, self.width
        raw = np.concatenate([np.zeros((h, 1), np.uint8), self.pixels.reshape(h, w * 3)], axis=1).tobytes()

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "wb") as f:
            f.write(self.png())


def colour_map(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1], shape (h, w) -> (h, w, 3) uint8 on a dark-blue to yellow ramp (viridis-like)."""
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], np.float32)
    v = np.clip(np.nan_to_num(values), 0, 1) * (len(stops) - 1)
    i = np.minimum(v.astype(int), len(stops) - 2)
    f = (v - i)[..., None]
    return np.round(stops[i] * (1 - f) + stops[i + 1] * f).astype(np.uint8)
