"""The service's multipart/form-data splitter: parts as a client library sends them, bytes
kept exactly (CR, LF and boundary-like runs inside a file), broken bodies refused with 400."""

import httpx
import pytest

from scattertag.serve.uploads import UploadError, parse_form


def encoded(files: dict, data: dict | None = None) -> tuple[bytes, str]:
    """A multipart body and its Content-Type, as httpx writes them for a POST."""
    request = httpx.Request("POST", "http://localhost/", files=files, data=data)
    return request.read(), request.headers["content-type"]


def test_a_file_and_a_field_come_back_exactly():
    payload = bytes(range(256)) * 64 + b"\r\n--not-the-boundary\r\n\r\n" + b"\r" * 100
    body, content_type = encoded({"file": ("frame.tif", payload)}, {"dataset": "/entry/data"})
    form = parse_form(body, content_type)
    assert form.files == {"file": ("frame.tif", payload)}
    assert form.fields == {"dataset": "/entry/data"}


def test_an_empty_file_is_a_part_with_no_bytes():
    body, content_type = encoded({"file": ("empty.cbf", b"")})
    assert parse_form(body, content_type).files["file"] == ("empty.cbf", b"")


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda body, ct: (body, "multipart/form-data"), "no boundary"),
        (lambda body, ct: (b"", ct), "no part"),
        (
            lambda body, ct: (body.replace(b"Content-Disposition", b"Content Disposition"), ct),
            "in header",
        ),
    ],
    ids=["no boundary", "empty body", "broken header"],
)
def test_broken_bodies_are_400(mangle, message):
    body, content_type = mangle(*encoded({"file": ("frame.tif", b"abc")}))
    with pytest.raises(UploadError, match=message) as caught:
        parse_form(body, content_type)
    assert caught.value.status == 400


def test_bytes_after_the_closing_boundary_are_ignored():
    body, content_type = encoded({"file": ("frame.tif", b"abc")})
    assert parse_form(body * 3, content_type).files == {"file": ("frame.tif", b"abc")}


def test_too_many_parts_are_refused():
    body, content_type = encoded({f"f{i}": (f"{i}.tif", b"x") for i in range(6)})
    with pytest.raises(UploadError, match="more than 4 parts"):
        parse_form(body, content_type)


def test_a_file_is_a_view_of_the_body_not_a_copy():
    body, content_type = encoded({"file": ("frame.tif", b"\r\n" * 1000)})
    data = parse_form(body, content_type).files["file"][1]
    assert isinstance(data, memoryview) and data.obj is body and data == b"\r\n" * 1000


def test_a_preamble_and_parts_without_headers_or_bytes():
    body = (
        b"ignored preamble\r\n--xy\r\n\r\nbare\r\n--xy  \r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.npy"\r\n\r\n'
        b"\r\n--xy--\r\n"
    )
    form = parse_form(body, "multipart/form-data; boundary=xy")
    assert form.fields == {"": "bare"} and form.files == {"file": ("a.npy", b"")}


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda body: len(body) - 12, "no closing boundary"),
        (lambda body: body.index(b"\r\n\r\n"), "headers do not end"),
        (lambda body: body.index(b"\r\n"), "no line break"),
    ],
    ids=["in the file", "in the headers", "after the boundary"],
)
def test_truncated_bodies_are_400(cut, message):
    body, content_type = encoded({"file": ("frame.tif", b"abc" * 100)})
    with pytest.raises(UploadError, match=message) as caught:
        parse_form(body[: cut(body)], content_type)
    assert caught.value.status == 400
