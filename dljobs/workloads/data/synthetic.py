"""Generated data sets with real, learnable structure; each is a pure function of its size and seed.

- shapes: CIFAR-shaped (3, 32, 32) images of 5 shapes and 5 textures at random positions, sizes and
  colours, with pixel noise: what tells the classes apart is local spatial structure, which a CNN finds
  far more easily than an MLP.
- sentiment: token sequences whose class (negative/positive) follows from sentiment words mixed with
  filler; a negation flips the word after it, so a bag of words is not enough.
- waves: multichannel time series, one class per waveform family, at random frequency, phase and
  amplitude, with noise.
"""

from __future__ import annotations

import numpy as np

SHAPE_CLASSES = [
    "disk",
    "ring",
    "square",
    "triangle",
    "cross",
    "h_stripes",
    "v_stripes",
    "checkers",
    "diagonal",
    "dots",
]
SENTIMENT_CLASSES = ["negative", "positive"]
WAVE_CLASSES = ["sine", "square", "sawtooth", "triangle", "chirp"]
WAVE_CHANNELS = 3

_POSITIVE = [
    "good",
    "great",
    "excellent",
    "wonderful",
    "love",
    "best",
    "happy",
    "fantastic",
    "amazing",
    "enjoyed",
    "brilliant",
    "superb",
]
_NEGATIVE = [
    "bad",
    "terrible",
    "awful",
    "poor",
    "hate",
    "worst",
    "sad",
    "boring",
    "horrible",
    "dull",
    "disappointing",
    "weak",
]
_NEGATORS = ["not", "never"]
_FILLER = [
    "the",
    "a",
    "movie",
    "was",
    "and",
    "it",
    "of",
    "plot",
    "actor",
    "story",
    "this",
    "film",
    "is",
    "with",
    "scene",
    "in",
    "to",
    "but",
    "i",
    "that",
    "for",
    "on",
    "director",
    "ending",
    "music",
]


def generate_shapes(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(count, 3, size, size) float32 images in [0, 1] and their class indices (10 classes)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(SHAPE_CLASSES))
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float32)
    scale = size / 32
    centre_x = rng.uniform(10, 22, count) * scale
    centre_y = rng.uniform(10, 22, count) * scale
    radius = rng.uniform(5.0, 9.0, count) * scale
    period = rng.integers(3, 5, count).astype(np.float32) * scale
    phase = rng.uniform(0, 4, count) * scale
    masks = np.zeros((count, size, size), dtype=bool)
    for cls in range(len(SHAPE_CLASSES)):
        picked = np.flatnonzero(labels == cls)
        if len(picked) == 0:
            continue
        dx = grid_x[None] - centre_x[picked, None, None]
        dy = grid_y[None] - centre_y[picked, None, None]
        r = radius[picked, None, None]
        p = period[picked, None, None]
        ph = phase[picked, None, None]
        masks[picked] = _shape_mask(cls, dx, dy, r, p, ph)
    # Random colours, the shape always brighter than its background in every channel.
    background = rng.uniform(0.0, 0.45, (count, 3)).astype(np.float32)
    foreground = background + rng.uniform(0.35, 0.55, (count, 3)).astype(np.float32)
    mask = masks[:, None].astype(np.float32)
    images = background[:, :, None, None] * (1 - mask) + foreground[:, :, None, None] * mask
    images += rng.normal(0.0, 0.08, images.shape).astype(np.float32)
    return np.clip(images, 0.0, 1.0).astype(np.float32), labels.astype(np.int64)


def _shape_mask(
    cls: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray, p: np.ndarray, ph: np.ndarray
) -> np.ndarray:
    distance2 = dx**2 + dy**2
    patch = (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if cls == 0:  # disk
        return distance2 <= r**2
    if cls == 1:  # ring
        return (distance2 <= r**2) & (distance2 >= (0.55 * r) ** 2)
    if cls == 2:  # square
        return (np.abs(dx) <= 0.8 * r) & (np.abs(dy) <= 0.8 * r)
    if cls == 3:  # triangle, apex up
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    if cls == 4:  # cross
        arm = 0.3 * r
        return ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    if cls == 5:  # horizontal stripes
        return patch & (np.floor((dy + ph) / p) % 2 == 0)
    if cls == 6:  # vertical stripes
        return patch & (np.floor((dx + ph) / p) % 2 == 0)
    if cls == 7:  # checkerboard
        return patch & ((np.floor((dx + ph) / p) + np.floor((dy + ph) / p)) % 2 == 0)
    if cls == 8:  # diagonal stripes
        return patch & (np.floor((dx + dy + ph) / (1.4 * p)) % 2 == 0)
    # dots on a grid
    cell = 1.6 * p
    ox = np.mod(dx + ph, cell) - cell / 2
    oy = np.mod(dy + ph, cell) - cell / 2
    return patch & (ox**2 + oy**2 <= (cell / 3.2) ** 2)


def sentiment_vocabulary(vocab_size: int) -> tuple[list[str], dict[str, list[int]]]:
    """id -> token for the generated sentiment set, and the ids of each word group."""
    room = vocab_size - 2
    per_side = max(1, min(len(_POSITIVE), room // 6))
    negators = 2 if room >= 8 else 1
    filler_count = room - 2 * per_side - negators
    filler = [_FILLER[i] if i < len(_FILLER) else f"w{i}" for i in range(filler_count)]
    vocabulary = [
        "<pad>",
        "<unk>",
        *_POSITIVE[:per_side],
        *_NEGATIVE[:per_side],
        *_NEGATORS[:negators],
        *filler,
    ]
    start = 2
    groups = {
        "positive": list(range(start, start + per_side)),
        "negative": list(range(start + per_side, start + 2 * per_side)),
        "negator": list(range(start + 2 * per_side, start + 2 * per_side + negators)),
        "filler": list(range(start + 2 * per_side + negators, vocab_size)),
    }
    return vocabulary, groups


def generate_sentiment(
    count: int, seed: int, *, vocab_size: int, max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """(count, max_length) int64 token ids (0 pads the end) and labels (0 negative, 1 positive).

    Each text is filler words with one to three sentiment phrases that agree with the label; a phrase is
    a word of the label's polarity, or a negator followed by a word of the opposite polarity.
    """
    rng = np.random.default_rng(seed)
    _, groups = sentiment_vocabulary(vocab_size)
    positive, negative = np.array(groups["positive"]), np.array(groups["negative"])
    negators, filler = np.array(groups["negator"]), np.array(groups["filler"])
    # Zipf-like filler: a few words are frequent, as in text.
    weights = 1.0 / np.arange(1, len(filler) + 1)
    weights /= weights.sum()
    labels = rng.permutation(np.arange(count) % 2).astype(np.int64)
    tokens = np.zeros((count, max_length), dtype=np.int64)
    for row in range(count):
        length = int(rng.integers(max(1, max_length // 2), max_length + 1))
        phrases: list[list[int]] = []
        used = 0
        for _ in range(int(rng.integers(1, 4))):
            if used >= length:
                break
            negated = length - used >= 2 and rng.random() < 0.35
            polarity_positive = bool(labels[row]) != negated
            word = int(rng.choice(positive if polarity_positive else negative))
            phrases.append([int(rng.choice(negators)), word] if negated else [word])
            used += len(phrases[-1])
        filler_words = rng.choice(filler, size=length - used, p=weights).tolist()
        # Phrases go in at sorted random gaps of the filler, never inside one another.
        slots = np.sort(rng.integers(0, len(filler_words) + 1, size=len(phrases)))
        text: list[int] = []
        start = 0
        for slot, phrase in zip(slots, phrases, strict=True):
            text += filler_words[start:slot] + phrase
            start = slot
        text += filler_words[start:]
        tokens[row, :length] = text
    return tokens, labels


def generate_waves(
    count: int, seed: int, *, length: int, channels: int = WAVE_CHANNELS
) -> tuple[np.ndarray, np.ndarray]:
    """(count, length, channels) float32 series and labels, one class per waveform family."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(count) % len(WAVE_CLASSES)).astype(np.int64)
    t = np.linspace(0.0, 1.0, length, endpoint=False, dtype=np.float64)[None, :, None]
    frequency = rng.uniform(1.5, 4.0, (count, 1, 1))
    phase = rng.uniform(0.0, 1.0, (count, 1, channels))
    amplitude = rng.uniform(0.5, 1.5, (count, 1, channels))
    offset = rng.normal(0.0, 0.2, (count, 1, channels))
    cycles = frequency * t + phase
    chirp_cycles = frequency * t + 1.5 * frequency * t**2 + phase
    fraction = np.mod(cycles, 1.0)
    shapes = {
        0: np.sin(2 * np.pi * cycles),
        1: np.where(fraction < 0.5, 1.0, -1.0),
        2: 2.0 * fraction - 1.0,
        3: 1.0 - 4.0 * np.abs(fraction - 0.5),
        4: np.sin(2 * np.pi * chirp_cycles),
    }
    series = np.zeros((count, length, channels))
    for cls, wave in shapes.items():
        picked = labels == cls
        series[picked] = wave[picked]
    series = amplitude * series + offset + rng.normal(0.0, 0.25, series.shape)
    return series.astype(np.float32), labels
