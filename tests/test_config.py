import pytest

from charrnn.config import DataConfig, ModelConfig, SampleConfig, TrainConfig, format_duration, from_dict, parse_duration, to_dict
from charrnn.errors import ConfigError


@pytest.mark.parametrize(
    "text, seconds",
    [("90s", 90), ("3m", 180), ("1h", 3600), ("1h30m", 5400), ("2.5m", 150), ("45", 45), (" 10 s ", 10), ("500ms", 0.5)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "3x", "0s", "m", "-5s"])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError, match="time"):
        parse_duration(text)


def test_format_duration():
    assert format_duration(5) == "5s"
    assert format_duration(125) == "2m05s"
    assert format_duration(3725) == "1h02m"


def test_default_time_only_without_other_limits():
    assert TrainConfig().time_s == 180
    assert TrainConfig(steps=10).time_s is None
    assert TrainConfig(epochs=1.0).time_s is None
    assert TrainConfig(steps=10, time="1m").time_s == 60


@pytest.mark.parametrize(
    "cfg, match",
    [
        (ModelConfig(hidden=0), "--hidden"),
        (ModelConfig(dropout=1.0), "--dropout"),
        (ModelConfig(cell="transformer"), "cell"),
        (TrainConfig(lr=-1.0), "--lr"),
        (TrainConfig(lr=float("nan")), "--lr"),
        (TrainConfig(min_lr=1.0, lr=0.1), "--min-lr"),
        (TrainConfig(batch_size=0), "--batch-size"),
        (TrainConfig(time="soon"), "--time"),
        (TrainConfig(clip=0), "--clip"),
        (SampleConfig(temperature=-1), "--temperature"),
        (SampleConfig(top_p=1.5), "--top-p"),
        (SampleConfig(top_k=0), "--top-k"),
        (SampleConfig(stop=("",)), "--stop"),
        (DataConfig(val_frac=1.0), "--val-frac"),
        (DataConfig(encoding="klingon"), "--encoding"),
        (DataConfig(errors="maybe"), "--errors"),
    ],
)
def test_validation_names_the_option(cfg, match):
    with pytest.raises(ConfigError, match=match):
        cfg.validate()


def test_round_trip_and_forward_compatibility():
    cfg = TrainConfig(steps=5, time="1m")
    assert from_dict(TrainConfig, to_dict(cfg)) == cfg
    d = DataConfig(paths=("a", "b"), doc_sep="%")
    assert from_dict(DataConfig, to_dict(d)) == d
    # a newer writer's extra key is ignored; a missing key takes today's default
    assert from_dict(ModelConfig, {"cell": "gru", "from_the_future": 1}) == ModelConfig(cell="gru")
