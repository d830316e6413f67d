"""Value edge cases round-trip exactly, with the default base64 response encoding and without it
(`rest_encoding=None`), in single commands, arrays, pipelines and the async client."""

import json

import pytest

from conftest import uniq

BIG = "x" * (1024 * 1024 - 4) + "🚀"

VALUES = [
    pytest.param("🚀 héllo ☃ 你好 👩‍👩‍👧", id="emoji"),
    pytest.param("8", id="eight"),
    pytest.param("1.0", id="one-point-zero"),
    pytest.param("12345678901234567890", id="big-int-string"),
    pytest.param("-0", id="minus-zero"),
    pytest.param("", id="empty"),
    pytest.param("OK", id="OK"),
    pytest.param("PONG", id="PONG"),
    pytest.param("T0s=", id="base64-looking"),
    pytest.param("\x00\x01\x02\x7f\x80\xff", id="control-bytes"),
    pytest.param('a"b\\c\n\r\td/e', id="escapes"),
    pytest.param(json.dumps({"a": [1, 2, {"b": "c"}], "e": "🚀"}), id="json-text"),
    pytest.param(BIG, id="1MiB"),
]


@pytest.mark.parametrize("value", VALUES)
def test_set_get_roundtrip(any_redis, value):
    k = uniq("val")
    assert any_redis.set(k, value) is True
    assert any_redis.get(k) == value
    assert any_redis.strlen(k) == len(value.encode())


@pytest.mark.parametrize("value", VALUES)
def test_values_inside_arrays(any_redis, value):
    r = any_redis
    k = uniq("val")
    r.rpush(k, value, "after")
    assert r.lrange(k, 0, -1) == [value, "after"]
    r.hset(f"{k}:h", values={"f": value})
    assert r.hgetall(f"{k}:h") == {"f": value}
    assert r.mget(f"{k}:nope", f"{k}:nope2") == [None, None]
    p = r.pipeline()
    p.set(f"{k}:s", value).get(f"{k}:s").lindex(k, 0)
    assert p.exec() == [True, value, value]
    tx = r.multi()
    tx.set(f"{k}:t", value).get(f"{k}:t")
    assert tx.exec() == [True, value]


async def test_async_roundtrip(aredis):
    for param in VALUES:
        value = param.values[0]
        k = uniq("aval")
        assert await aredis.set(k, value) is True
        assert await aredis.get(k) == value


def test_python_numbers_are_sent_as_json_numbers(any_redis):
    r = any_redis
    k = uniq("num")
    r.set(k, 8)
    assert r.get(k) == "8"
    r.set(k, 1.0)
    assert r.get(k) == "1.0"  # the JSON lexeme is kept: not "1"
    r.set(k, 10**20)
    assert r.get(k) == "100000000000000000000"
    r.set(k, 0.1)
    assert r.get(k) == "0.1"
    r.set(k, True)
    assert r.get(k) == "true"  # JSON true -> "true" (the TS client relies on it too)


def test_numbers_beyond_float_precision_keep_every_digit(redis):
    k = uniq("num")
    redis.set(k, 9007199254740993)  # 2**53 + 1
    assert redis.get(k) == "9007199254740993"
    assert redis.incr(k) == 9007199254740994


def test_non_string_values_are_json_encoded_by_the_client(any_redis):
    k = uniq("obj")
    any_redis.set(k, {"a": 1, "b": [True, None]})
    assert json.loads(any_redis.get(k)) == {"a": 1, "b": [True, None]}


def test_nested_arrays(any_redis):
    r = any_redis
    k = uniq("nested")
    sid = r.xadd(k, "*", {"emoji": "🚀", "eight": "8", "empty": "", "ok": "OK"})
    assert r.xrange(k, "-", "+") == [[sid, ["emoji", "🚀", "eight", "8", "empty", "", "ok", "OK"]]]
    assert r.eval("return {'OK', {'8', ''}, 1}") == ["OK", ["8", ""], 1]


def test_unicode_keys_and_fields(any_redis):
    k = f"{uniq('key')}:ключ/with spaces?&#%+="
    any_redis.hset(k, values={"поле 🚀": "значение"})
    assert any_redis.hget(k, "поле 🚀") == "значение"
    assert any_redis.keys(k) == [k]
