"""Write specs/data/ctr_synthetic.parquet: a small click log with every input kind of issue 10.

    .venv/bin/python specs/data/make_ctr_synthetic.py

20,000 impressions (seeded, so the file is the same every time): hashed-looking ids (`user_id`
text, `item_id` numbers), plain categories (`category`, `device`), a numeric-looking category
(`hour`), a Parquet list column (`genres`), text lists (`tags`, split at '|'), numbers (`price`,
`user_age`), a constant column (`site`), an all-missing one (`promo`), a row key
(`impression_id`), sample weights (`weight`) and the label `click`. Clicks follow a logistic
model of user, item, category, hour, genres, tags and price, so there is something to learn.
`specs/ctr_synthetic.yaml` is what `rocketc init` writes for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = [
    "action", "adventure", "animation", "comedy", "crime", "documentary", "drama", "family",
    "fantasy", "history", "horror", "music", "mystery", "romance", "scifi", "sport", "thriller",
    "western",
]  # fmt: skip
CATEGORIES = [f"cat_{k:02d}" for k in range(12)]
DEVICES = ["android", "ios", "web"]
TAGS = [f"t{k}" for k in range(40)]


def make_table(rows: int = 20_000, seed: int = 7):
    """The click log as a pandas DataFrame."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    users = rng.zipf(1.3, rows) % 3_000
    items = 1 + rng.zipf(1.2, rows) % 1_500
    category = rng.integers(0, len(CATEGORIES), rows)
    hour = rng.integers(0, 24, rows)
    device = rng.choice(len(DEVICES), rows, p=[0.5, 0.35, 0.15])
    price = np.round(np.exp(rng.normal(3.0, 0.8, rows)), 2)
    age = rng.integers(18, 71, rows)
    genres = [list(rng.choice(GENRES, rng.integers(1, 4), replace=False)) for _ in range(rows)]
    tag_lists = [list(rng.choice(TAGS, rng.integers(0, 6), replace=False)) for _ in range(rows)]

    user_bias = rng.normal(0, 0.8, 3_000)
    item_bias = rng.normal(0, 0.8, 1_501)
    category_effect = rng.normal(0, 0.5, len(CATEGORIES))
    genre_effect = dict(zip(GENRES, rng.normal(0, 0.6, len(GENRES)), strict=True))
    tag_effect = dict(zip(TAGS, rng.normal(0, 0.4, len(TAGS)), strict=True))
    logit = (
        -1.0
        + user_bias[users]
        + item_bias[items]
        + category_effect[category]
        + 0.6 * np.sin(hour / 24 * 2 * np.pi)
        + np.array([np.mean([genre_effect[g] for g in gs]) for gs in genres])
        + np.array([sum(tag_effect[t] for t in ts) for ts in tag_lists])
        - 0.3 * (np.log(price) - 3.0)
        + 0.2 * (device == 1)
    )
    click = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    weight = rng.choice([0.5, 1.0, 2.0], rows, p=[0.2, 0.6, 0.2])
    return pd.DataFrame(
        {
            "impression_id": rng.permutation(rows) + 1_000_000,
            "user_id": [f"u{u:05d}" for u in users],
            "item_id": items,
            "category": [CATEGORIES[c] for c in category],
            "hour": hour,
            "device": [DEVICES[d] for d in device],
            "genres": genres,
            "tags": ["|".join(ts) if ts else None for ts in tag_lists],
            "price": price,
            "user_age": age,
            "site": "main",
            "promo": pd.Series([None] * rows, dtype=object),
            "weight": weight,
            "click": click,
        }
    )


if __name__ == "__main__":
    out = Path(__file__).with_name("ctr_synthetic.parquet")
    make_table().to_parquet(out, index=False, compression="zstd")
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
