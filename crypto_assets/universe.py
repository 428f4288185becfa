"""The token universe: 37 tokens, their category and where each one trades.

Pure Python (no Dagster, no Spark) so the CLI, the emulator, tests and notebooks can all use it.
The facts live in ``config/universe.yaml``; this module only parses and queries them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_UNIVERSE_PATH = Path(__file__).parent / "config" / "universe.yaml"
CATEGORIES = ("Payment", "DeFi", "Layer 1", "Meme", "NFT", "Infrastructure")


class UniverseError(ValueError):
    """The universe file is inconsistent: raised at load time, never mid-run."""


def _parse_utc(value: str | datetime) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


CANONICAL = ("binance", "spot")
MARKETS = ("spot", "usdm_futures", "coinm_futures")


@dataclass(frozen=True)
class Listing:
    """One period during which a token traded under ``pair`` on ``exchange`` (the venue) in
    ``market``; ``end`` exclusive."""

    exchange: str
    pair: str
    start: datetime
    end: datetime | None
    source: str
    market: str = "spot"

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and (self.end is None or self.end > start)


@dataclass(frozen=True)
class Token:
    symbol: str
    name: str
    category: str
    coingecko_id: str
    listings: tuple[Listing, ...]
    note: str = ""
    # The (venue, market) whose bars silver and gold are computed from.
    canonical: tuple[str, str] = CANONICAL

    def pair_on(self, exchange: str, start: datetime, end: datetime, market: str = "spot") -> str | None:
        """The pair this token traded under on ``exchange``/``market`` at any time in ``[start, end)``."""
        for listing in self.listings:
            if listing.exchange == exchange and listing.market == market and listing.overlaps(start, end):
                return listing.pair
        return None

    def canonical_pairs(self) -> set[str]:
        """Every pair of the token's canonical venue and market."""
        venue, market = self.canonical
        return {lst.pair for lst in self.listings if lst.exchange == venue and lst.market == market}


@dataclass(frozen=True)
class Universe:
    quote_asset: str
    tokens: tuple[Token, ...]
    # (venue, market) -> pair templates such as "{token}USDT": pairs other venues and markets name
    # the same way, valid for every token with a canonical listing (e.g. Binance USDT-M futures).
    templates: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # (venue, market) -> tokens the templates do not apply to (Binance futures list SHIB only as
    # the per-1,000 contract 1000SHIBUSDT: there is no SHIBUSDT there).
    template_exceptions: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    _by_symbol: dict[str, Token] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_symbol.update({t.symbol: t for t in self.tokens})

    def token(self, symbol: str) -> Token:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise KeyError(f"unknown token {symbol!r}; known: {sorted(self._by_symbol)}") from None

    @property
    def symbols(self) -> list[str]:
        return [t.symbol for t in self.tokens]

    def pairs(self, exchange: str = "binance", market: str = "spot") -> dict[str, Token]:
        """Every pair known on ``exchange``/``market`` -> its token: the dated listings there,
        and the market's pair templates applied to every token listed anywhere."""
        known = {
            listing.pair: token
            for token in self.tokens
            for listing in token.listings
            if listing.exchange == exchange and listing.market == market
        }
        skipped = self.template_exceptions.get((exchange, market), frozenset())
        for template in self.templates.get((exchange, market), ()):
            for token in self.tokens:
                if token.listings and token.symbol not in skipped:
                    known.setdefault(template.format(token=token.symbol), token)
        return known

    def venue_markets(self) -> list[tuple[str, str]]:
        """Every (venue, market) the universe knows pairs for."""
        found = {(lst.exchange, lst.market) for t in self.tokens for lst in t.listings}
        return sorted(found | set(self.templates))

    def series_tokens(self) -> dict[str, str]:
        """``venue/market/pair`` -> token for every known series (for mapping raw rows)."""
        return {
            series_key(venue, market, pair): token.symbol
            for venue, market in self.venue_markets()
            for pair, token in self.pairs(venue, market).items()
        }

    def series_quotes(self) -> dict[str, str]:
        """``venue/market/pair`` -> the asset its prices are quoted in (``BTCUSDC`` -> ``USDC``,
        a coin-margined ``BTCUSD_PERP`` -> ``USD``): the token's symbol is the pair's prefix."""
        return {
            series: quote_asset(series.split("/")[2], token) for series, token in self.series_tokens().items()
        }

    def canonical_series(self) -> dict[str, str]:
        """``venue/market/pair`` -> token for the series silver and gold are computed from."""
        return {
            series_key(*token.canonical, pair): token.symbol
            for token in self.tokens
            for pair in token.canonical_pairs()
        }

    def active_pairs(self, start: datetime, end: datetime, exchange: str = "binance") -> dict[str, Token]:
        """Spot pairs trading at some point in ``[start, end)`` -> token."""
        active: dict[str, Token] = {}
        for token in self.tokens:
            pair = token.pair_on(exchange, start, end)
            if pair is not None:
                active[pair] = token
        return active

    def unavailable(self, start: datetime, end: datetime, exchange: str = "binance") -> dict[str, str]:
        """Tokens with no pair on ``exchange`` in ``[start, end)`` -> the reason, for run metadata."""
        reasons: dict[str, str] = {}
        for token in self.tokens:
            if token.pair_on(exchange, start, end) is not None:
                continue
            own = [lst for lst in token.listings if lst.exchange == exchange]
            if not own:
                reasons[token.symbol] = token.note or f"no {exchange} pair"
            elif all(lst.start >= end for lst in own):
                reasons[token.symbol] = f"not listed yet (listed {own[0].start:%Y-%m-%d})"
            else:
                ended = max((lst.end for lst in own if lst.end is not None), default=None)
                reasons[token.symbol] = (
                    f"delisted or suspended (last {own[-1].pair} bar before {ended:%Y-%m-%d %H:%M})"
                    if ended is not None
                    else "suspended"
                )
        return reasons


def series_key(venue: str, market: str, pair: str) -> str:
    """One series of klines: a pair on a venue's market, e.g. ``binance/usdm_futures/BTCUSDT``."""
    return f"{venue}/{market}/{pair}"


def quote_asset(pair: str, token: str) -> str:
    """The quote asset of ``pair``, a pair of ``token``: what follows the token's symbol, without
    a perpetual's ``_PERP`` suffix."""
    base = pair.removesuffix("_PERP")
    if not base.startswith(token) or len(base) == len(token):
        raise UniverseError(f"pair {pair!r} does not start with its token {token!r} and a quote asset")
    return base[len(token) :]


def _market(value: str, where: str) -> str:
    if value not in MARKETS:
        raise UniverseError(f"{where}: unknown market {value!r}; one of {MARKETS}")
    return value


def _parse(raw: dict) -> Universe:
    canonical = raw.get("canonical") or {}
    default = (
        canonical.get("venue", CANONICAL[0]),
        _market(canonical.get("market", CANONICAL[1]), "canonical"),
    )
    tokens: list[Token] = []
    for entry in raw["tokens"]:
        category = entry["category"]
        if category not in CATEGORIES:
            raise UniverseError(f"{entry['symbol']}: unknown category {category!r}")
        listings = tuple(
            Listing(
                exchange=item["exchange"],
                pair=item["pair"],
                start=_parse_utc(item["start"]),
                end=_parse_utc(item["end"]) if item.get("end") else None,
                source=item.get("source", ""),
                market=_market(item.get("market", "spot"), f"{entry['symbol']} listing {item['pair']}"),
            )
            for item in entry.get("listings", [])
        )
        for listing in listings:
            if listing.end is not None and listing.end <= listing.start:
                raise UniverseError(f"{entry['symbol']}: listing {listing.pair} ends before it starts")
        tokens.append(
            Token(
                symbol=entry["symbol"],
                name=entry["name"],
                category=category,
                coingecko_id=entry["coingecko_id"],
                listings=listings,
                note=entry.get("note", ""),
                canonical=(
                    entry["canonical"].get("venue", default[0]),
                    _market(entry["canonical"].get("market", default[1]), entry["symbol"]),
                )
                if entry.get("canonical")
                else default,
            )
        )
    symbols = [t.symbol for t in tokens]
    if len(set(symbols)) != len(symbols):
        raise UniverseError("duplicate token symbols in the universe file")
    markets = {
        (item["venue"], _market(item.get("market", "spot"), f"markets: {item['venue']}")): item
        for item in raw.get("markets", [])
    }
    templates = {key: tuple(item["pairs"]) for key, item in markets.items()}
    # A trimmed universe file keeps the markets section: an exception for a token it no longer
    # lists is simply moot.
    exceptions = {
        key: frozenset(item.get("except", ())) for key, item in markets.items() if item.get("except")
    }
    return Universe(
        quote_asset=raw.get("quote_asset", "USDT"),
        tokens=tuple(tokens),
        templates=templates,
        template_exceptions=exceptions,
    )


def load_universe(path: str | Path | None = None) -> Universe:
    """The token universe: ``path``, else the file named by ``UNIVERSE_FILE`` (e.g. a few tokens
    for a quick trial), else config/universe.yaml. Parsed once per process and file."""
    return _load_universe(Path(path or os.environ.get("UNIVERSE_FILE") or DEFAULT_UNIVERSE_PATH).resolve())


@lru_cache(maxsize=4)
def _load_universe(path: Path) -> Universe:
    with open(path, encoding="utf-8") as handle:
        return _parse(yaml.safe_load(handle))
