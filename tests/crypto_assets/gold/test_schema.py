from pathlib import Path

from crypto_assets.gold.assets import GOLD_ASSETS, gold_dictionary

REPO = Path(__file__).resolve().parents[3]


def test_the_data_dictionary_in_docs_is_up_to_date():
    written = (REPO / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert written == gold_dictionary(), "run `crypto-analytics docs` and commit docs/data-dictionary.md"


def test_every_gold_column_is_documented_and_clustered_by_day():
    for asset in GOLD_ASSETS:
        metadata = asset.metadata_by_key[asset.key]
        schema = metadata["dagster/column_schema"]
        assert schema.columns and all(c.description for c in schema.columns)
        assert metadata["cluster_by"] == "DT"
        assert schema.columns[0].name == "dt"
