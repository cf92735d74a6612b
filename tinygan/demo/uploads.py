"""An upload to the demo's judge, checked before it costs memory: the form's image field, and its decoded size.

What an upload may cost is bounded at each stage:
- the body: MAX_UPLOAD_BYTES, read by at most UPLOAD_SLOTS requests at a time (the handler's semaphore);
- the form: a multipart body is split on its boundary, looking at no more than MAX_PARTS parts (the standard
  library's email parser builds an object per part and per line: 95,000 tiny parts took half a minute);
- the decoded image: its header is read first, and the image is refused (413) when its pixels x channels x
  bytes per sample exceed MAX_DECODED_BYTES, or its pixels MAX_UPLOAD_PIXELS. Pillow turns every image into
  4-byte RGB(A) pixels on the way to D, so the pixel count bounds those copies. A 309 KB PNG can hold
  6300x6300 pixels of 16-bit RGBA: 318 MB decoded.
"""
import email.message
import email.utils
import io
import warnings
from http import HTTPStatus

MAX_UPLOAD_BYTES = 10 * 1024 * 1024        # 10 MB
MAX_UPLOAD_PIXELS = 16_000_000             # a 16-megapixel photo (4000x4000)
MAX_DECODED_BYTES = 64 * 1024 * 1024       # pixels x channels x bytes per sample, before any conversion
MAX_PARTS = 16                             # parts of a multipart form looked at; a judge form has up to four
TEXT_FIELDS = ("box", "eyes", "explain")   # the judge form's fields besides the image
MAX_FIELD_BYTES = 200                      # a longer text field is not read
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")


class BadRequest(ValueError):
    """A client error: answered with ``status`` and the message as one line."""

    def __init__(self, message, status=HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


def header_parameter(value, name, header="content-type"):
    """A parameter of a header value, as in 'multipart/form-data; boundary=xyz' -> 'xyz' (quotes removed)."""
    message = email.message.Message()
    message[header] = value
    found = message.get_param(name, header=header)
    return email.utils.collapse_rfc2231_value(found) if found is not None else None


def uploaded_image(content_type, body):
    """The image bytes of a judge request and its text fields: (a multipart form's 'image' field and its
    other fields as {name: text}), or (the body itself, {})."""
    if content_type.lower().startswith("multipart/form-data"):
        parts = form_parts(content_type, body, "image")
        fields = {name: content.decode("utf-8", errors="replace") for name, content in parts.items()
                  if name in TEXT_FIELDS and len(content) <= MAX_FIELD_BYTES}
        return parts["image"], fields
    if not body:
        raise BadRequest("no image: send one in a form field named 'image', or as the request body")
    return body, {}


def form_parts(content_type, body, required):
    """The named parts of a multipart/form-data body (RFC 7578), looking at MAX_PARTS parts: {name: content}.
    The part named ``required`` must be there and not empty.

    The body is ``--boundary CRLF part CRLF --boundary CRLF part ... CRLF --boundary--``, and each part is
    headers, a blank line, then the content.
    """
    boundary = header_parameter(content_type, "boundary")
    if not boundary:
        raise BadRequest("malformed multipart form (no boundary or no parts)")
    pieces = body.split(b"--" + boundary.encode("latin-1"), MAX_PARTS + 1)    # [preamble, part, part, ...]
    if len(pieces) < 3:
        raise BadRequest("malformed multipart form (no boundary or no parts)")
    parts = {}
    for piece in pieces[1:MAX_PARTS + 1]:
        if piece.startswith(b"--"):                                       # the closing delimiter: no more parts
            break
        head, blank, content = piece.partition(b"\r\n\r\n")
        if not blank:
            raise BadRequest("malformed multipart form (a part without a blank line after its headers)")
        disposition = next((line.split(b":", 1)[1] for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-disposition:")), b"")
        name = header_parameter(disposition.decode("latin-1"), "name", "content-disposition")
        if name is not None and name not in parts:
            parts[name] = content[:-2] if content.endswith(b"\r\n") else content   # that CRLF ends the part
    if required in parts:
        if not parts[required]:
            raise BadRequest(f"the form's '{required}' field is empty")
        return parts
    if len(pieces) > MAX_PARTS + 1 and not pieces[MAX_PARTS + 1].startswith(b"--"):
        raise BadRequest(f"the form has more than {MAX_PARTS} parts and none of the first is named '{required}'",
                         HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    raise BadRequest(f"the form has no file in a field named '{required}'")


def decoded_size(img):
    """(channels, bytes per sample) of an opened, not yet decoded, Pillow image, from its file's own layout."""
    raw_modes = [tile.args if isinstance(tile.args, str) else str(tile.args[0]) for tile in img.tile
                 if tile.args] + [img.mode]
    bytes_per_sample = 4 if img.mode in ("I", "F") else 2 if any("16" in mode for mode in raw_modes) else 1
    return len(img.getbands()), bytes_per_sample


def check_image(data):
    """Refuse what is not an image of an allowed format, or would take too much memory, before decoding it."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)    # refused below, with a reason
            with Image.open(io.BytesIO(data)) as img:                       # reads the header only
                fmt, (width, height) = img.format, img.size
                channels, sample_bytes = decoded_size(img)
    except Image.DecompressionBombError as err:                            # pixels beyond Pillow's own limit
        raise BadRequest(f"the image is too large: {str(err).split(',')[0]}; the demo takes at most "
                         f"{MAX_UPLOAD_PIXELS:,} pixels", HTTPStatus.REQUEST_ENTITY_TOO_LARGE) from None
    except Exception:                                                      # PIL raises many kinds
        raise BadRequest("not an image tinygan can read (expected JPEG, PNG, WebP, BMP or GIF)",
                         HTTPStatus.UNSUPPORTED_MEDIA_TYPE) from None
    if fmt not in IMAGE_FORMATS:
        raise BadRequest(f"{fmt} images are not accepted; expected one of {', '.join(IMAGE_FORMATS)}",
                         HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
    decoded = width * height * channels * sample_bytes
    if decoded > MAX_DECODED_BYTES:
        raise BadRequest(f"the image is too large: {width}x{height} pixels of {channels} channels at "
                         f"{8 * sample_bytes} bits would take {decoded:,} bytes decoded, more than "
                         f"{MAX_DECODED_BYTES:,}; scale it down first", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if width * height > MAX_UPLOAD_PIXELS:
        raise BadRequest(f"the image is too large: {width}x{height} pixels, more than {MAX_UPLOAD_PIXELS:,}; "
                         "scale it down first", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
