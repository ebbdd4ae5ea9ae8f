"""Token counts offline and dollar costs from usage."""

from __future__ import annotations

import pytest

from lib.cost import pricing, tokens


@pytest.mark.parametrize(
    ("model", "text", "expected", "exact"),
    [
        ("gpt-4o-mini", "Hello world", 2, True),
        ("gpt-5-mini", "Acme Holdings, Inc.", 6, True),  # Ac|me| Holdings|,| Inc|.
        ("gpt-4", "Hello world", 2, True),  # cl100k_base
        ("llama3.1:8b", "Hello world", 2, False),  # unknown tokenizer: labelled approximation
    ],
)
def test_count_text(model, text, expected, exact):
    count = tokens.count_text(text, model)
    assert (count.tokens, count.exact) == (expected, exact)


def test_chat_framing_matches_cookbook():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello world"}]
    words = tokens.count_texts(["Be brief.", "Hello world", "system", "user"], "gpt-4o").tokens
    assert tokens.count_messages(messages, "gpt-4o").tokens == sum(words) + 2 * 3 + 3


def test_seeded_cache_needs_no_network(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokens, "_encodings", {})
    assert tokens.get_encoding("o200k_base") is not None
    assert len(list(tmp_path.iterdir())) == 1
    assert tokens.get_encoding("r50k_base") is None  # not shipped: unavailable, never downloaded


@pytest.mark.parametrize(
    ("usage", "model", "batch", "expected"),
    [
        (pricing.Usage(1_000_000, 0), "gpt-4o-mini", False, 0.15),
        (pricing.Usage(0, 1_000_000), "gpt-4o-mini", False, 0.60),
        (pricing.Usage(1_000_000, 1_000_000, cached_tokens=500_000), "gpt-4o", False, 1.25 + 0.625 + 10.0),
        (pricing.Usage(2_000_000, 0), "gpt-4o-mini-2024-07-18", False, 0.30),
        (pricing.Usage(1_000_000, 1_000_000), "gpt-4.1-mini", True, (0.40 + 1.60) / 2),
    ],
)
def test_cost(usage, model, batch, expected):
    assert pricing.cost(usage, pricing.price_for(model), batch=batch) == pytest.approx(expected)


def test_unknown_model_is_unpriced_not_free():
    assert pricing.cost(pricing.Usage(10, 10), pricing.price_for("my-local-llama")) is None


def test_usage_from_api_reads_cached_and_reasoning_tokens():
    usage = pricing.Usage.from_api(
        {
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 256},
        }
    )
    assert usage == pricing.Usage(1200, 300, 1024, 256)


def test_a_prices_file_overrides_the_table_and_prices_new_models(tmp_path, monkeypatch):
    prices = tmp_path / "prices.json"
    prices.write_text(
        '{"gpt-4o-mini": {"input": 0.2, "output": 0.8}, "my-llama": {"input": 0.01, "output": 0.02}}'
    )
    monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(prices))
    assert pricing.price_for("gpt-4o-mini") == pricing.Price(0.2, 0.2, 0.8)
    assert pricing.price_for("my-llama") == pricing.Price(0.01, 0.01, 0.02)
    assert pricing.price_for("gpt-4o") == pricing.PRICES["gpt-4o"]  # the rest of the table stands
    monkeypatch.delenv(pricing.PRICES_FILE_ENV)
    assert pricing.price_for("my-llama") is None


def test_a_broken_prices_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "prices.json"
    bad.write_text('{"gpt-4o-mini": {"output": 1}}')
    with pytest.raises(ValueError, match="prices file"):
        pricing.load_prices(bad)


@pytest.mark.parametrize(
    ("model", "aliases", "expected"),
    [
        ("gpt-4o-mini", None, "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", None, "gpt-4o-mini"),  # OpenAI's own dated snapshot
        ("gpt-3.5-turbo-0125", None, "gpt-3.5-turbo"),  # and its four-digit snapshots
        ("gpt-4o-2024-08-06", None, "gpt-4o"),
        ("gpt-4o-mini-json", None, None),  # a deployment name: may be routed to anything
        ("gpt-4o-mini-eu-2024-07-18", None, None),
        ("gpt-4o-mini-json", {"gpt-4o-mini-json": "gpt-4o-mini"}, "gpt-4o-mini"),
        ("team/fast", {"team/fast": "gpt-4o-mini-json", "gpt-4o-mini-json": "gpt-4.1-nano"}, "gpt-4.1-nano"),
        ("loop", {"loop": "loop2", "loop2": "loop"}, None),
        ("gpt-4o-mini-json", {"gpt-4o-mini-json": "no-such-model"}, None),
    ],
)
def test_prefix_names_are_unpriced_unless_mapped(model, aliases, expected):
    want = pricing.PRICES[expected] if expected else None
    assert pricing.price_for(model, aliases=aliases) == want


def test_the_prices_file_maps_deployment_names(tmp_path, monkeypatch):
    prices = tmp_path / "prices.json"
    prices.write_text(
        '{"my-llama": {"input": 0.01, "output": 0.02}, "aliases": {"azure-mini": "gpt-4o-mini"}}'
    )
    monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(prices))
    assert pricing.price_for("azure-mini") == pricing.PRICES["gpt-4o-mini"]
    assert pricing.price_for("azure-mini", aliases={"azure-mini": "my-llama"}) == pricing.Price(
        0.01, 0.01, 0.02
    )
    assert "aliases" not in pricing.load_prices(prices)


# OpenAI's published prices per 1M tokens (input, cached input, output), as the shipped database holds them.
@pytest.mark.parametrize(
    ("model", "tier", "expected"),
    [
        ("gpt-5-mini", "default", (0.25, 0.025, 2.0)),
        ("gpt-5-mini", "flex", (0.125, 0.0125, 1.0)),
        ("gpt-5-mini", "priority", (0.45, 0.045, 3.6)),
        ("gpt-5-mini", "auto", (0.25, 0.025, 2.0)),  # auto is priced by the tier the answer says served it
        ("gpt-5", "flex", (0.625, 0.0625, 5.0)),
        ("gpt-5.4-mini", "default", (0.75, 0.075, 4.5)),
        ("gpt-5.4-mini", "flex", (0.375, 0.0375, 2.25)),
        ("gpt-5-mini-2025-08-07", "flex", (0.125, 0.0125, 1.0)),  # a dated snapshot: its base model
        ("o3", "flex", (1.0, 0.25, 4.0)),
        ("gpt-4o-mini", "default", (0.15, 0.075, 0.6)),
        ("gpt-4o-mini", "flex", None),  # OpenAI offers no flex for it
        ("gpt-4.1-mini", "priority", (0.7, 0.175, 2.8)),
        ("my-local-llama", "default", None),
        ("my-local-llama", "flex", None),
    ],
)
def test_prices_per_tier_come_from_the_database(model, tier, expected):
    price = pricing.price_for(model, tier=tier)
    assert (None if price is None else (price.input, price.cached_input, price.output)) == (
        None if expected is None else pytest.approx(expected)
    )


def test_the_database_is_offline_and_dated(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the price database reached for the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    pricing._model.cache_clear()
    assert pricing.price_for("gpt-5.5") is not None
    assert pricing.PRICES_READ_ON >= "2026-10-01"
    assert pricing.DATA_SOURCE.startswith("genai-prices ")
    assert "gpt-5-mini" in pricing.PRICES and "gpt-image-1" not in pricing.PRICES


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        # gpt-6-luna: input 0.10, cache read 0.01, cache write 0.125, output 0.50 per 1M
        (pricing.Usage(100_000, 0), 0.010),
        (pricing.Usage(100_000, 0, cache_write_tokens=100_000), 0.0125),
        (
            pricing.Usage(200_000, 0, cached_tokens=100_000, cache_write_tokens=50_000),
            0.001 + 0.00625 + 0.005,
        ),
        (pricing.Usage(0, 1_000_000), 0.50),
        # a prompt over 272K tokens: the whole request at 2x input and cache prices, 1.5x output
        (pricing.Usage(272_000, 1_000), 0.0272 + 0.0005),
        (pricing.Usage(272_001, 1_000), 272_001 * 0.20 / 1e6 + 1_000 * 0.75 / 1e6),
        (
            pricing.Usage(300_000, 0, cached_tokens=100_000, cache_write_tokens=100_000),
            100_000 * (0.20 + 0.02 + 0.25) / 1e6,
        ),
    ],
)
def test_cache_writes_are_billed_at_their_own_price(usage, expected):
    price = pricing.price_for("gpt-6-luna")
    assert price.cache_write == pytest.approx(1.25 * price.input)
    assert pricing.cost(usage, price) == pytest.approx(expected)


def test_usage_reads_cache_write_tokens():
    usage = pricing.Usage.from_api(
        {"prompt_tokens": 2000, "completion_tokens": 5, "prompt_tokens_details": {"cache_write_tokens": 1536}}
    )
    assert usage.cache_write_tokens == 1536


def test_caching_saved_counts_reads_and_the_extra_on_writes():
    price = pricing.Price(1.0, 0.1, 2.0, cache_write=1.25)
    assert pricing.caching_saved(
        pricing.Usage(3_000_000, 0, cached_tokens=1_000_000), price
    ) == pytest.approx(0.9)
    assert pricing.caching_saved(
        pricing.Usage(3_000_000, 0, cached_tokens=1_000_000, cache_write_tokens=1_000_000), price
    ) == pytest.approx(0.9 - 0.25)
    assert pricing.caching_saved(pricing.Usage(10, 10), None) is None


def test_overrides_win_per_tier_and_aliases_map_deployments(tmp_path, monkeypatch):
    prices = tmp_path / "prices.json"
    prices.write_text(
        '{"gpt-5-mini": {"input": 0.3, "output": 2.4}, "gpt-5-mini@priority": {"input": 0.6, "output": 4.8},'
        ' "my-llama": {"input": 0.01, "output": 0.02}}'
    )
    monkeypatch.setenv(pricing.PRICES_FILE_ENV, str(prices))
    assert pricing.price_for("gpt-5-mini") == pricing.Price(0.3, 0.3, 2.4)
    assert pricing.price_for("gpt-5-mini", tier="flex") == pricing.Price(0.15, 0.15, 1.2)  # half, like batch
    assert pricing.price_for("gpt-5-mini", tier="priority") == pricing.Price(0.6, 0.6, 4.8)
    assert pricing.price_for("my-llama", tier="priority") is None  # not derivable from a standard price
    run_price = pricing.Price(1.0, 0.5, 3.0)
    assert pricing.price_for("gpt-5-mini", {"gpt-5-mini": run_price}) == run_price  # the run's own wins
    assert pricing.price_for("acme-prod-mini", aliases={"acme-prod-mini": "gpt-5-nano"}) == pricing.price_for(
        "gpt-5-nano"
    )
    assert pricing.price_for("acme-prod-mini") is None
    assert pricing.tier_prices("gpt-5-mini", run_price)["flex"] == pricing.Price(0.5, 0.25, 1.5)
