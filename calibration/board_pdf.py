"""A one-page PDF holding one greyscale image that fills the page, at a page size given in points.

Written by hand (the PDF format is simple for this case) so the page size is exact: printed at
100 % the board comes out at its true physical size.
"""

from __future__ import annotations

import zlib

import numpy as np

CAPTION_MAX_PT = 7.0


def _pdf_string(text: str) -> str:
    """A PDF literal string (Latin-1 text, with the three special characters escaped)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return f"({escaped})"


def _content_stream(page_w_pt: float, page_h_pt: float, caption: str, quiet_pt: float) -> bytes:
    """Draw the image over the whole page, then the caption in the bottom quiet zone."""
    ops = [f"q {page_w_pt:.4f} 0 0 {page_h_pt:.4f} 0 0 cm /Im0 Do Q"]
    # Helvetica is about 0.5 em wide per character on average; keep the caption on the page and in the quiet zone
    size_pt = min(CAPTION_MAX_PT, 0.3 * quiet_pt, 0.9 * page_w_pt / (0.5 * max(len(caption), 1)))
    if caption and size_pt >= 3.0:
        position = f"{0.05 * page_w_pt:.2f} {0.3 * quiet_pt:.2f} Td"
        ops.append(f"BT /F1 {size_pt:.2f} Tf 0.45 g {position} {_pdf_string(caption)} Tj ET")
    return "\n".join(ops).encode("latin-1", errors="replace")


def pdf_with_image(image: np.ndarray, page_w_pt: float, page_h_pt: float, caption: str = "") -> bytes:
    """A PDF whose MediaBox is [0 0 page_w_pt page_h_pt] and whose image (uint8, greyscale) fills it exactly."""
    height_px, width_px = image.shape
    quiet_pt = _quiet_zone_pt(image, page_h_pt)  # the caption goes in the white band under the board
    pixels = zlib.compress(np.ascontiguousarray(image, dtype=np.uint8).tobytes(), 9)
    content = _content_stream(page_w_pt, page_h_pt, caption, quiet_pt)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {page_w_pt:.4f} {page_h_pt:.4f}] "
            "/Resources << /XObject << /Im0 4 0 R >> /Font << /F1 6 0 R >> >> /Contents 5 0 R >>"
        ).encode(),
        _stream(
            f"<< /Type /XObject /Subtype /Image /Width {width_px} /Height {height_px} /ColorSpace /DeviceGray "
            f"/BitsPerComponent 8 /Interpolate false /Filter /FlateDecode /Length {len(pixels)} >>",
            pixels,
        ),
        _stream(f"<< /Length {len(content)} >>", content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    return _assemble(objects)


def _quiet_zone_pt(image: np.ndarray, page_h_pt: float) -> float:
    """Height of the white band at the bottom of the image, in points."""
    dark_rows = np.flatnonzero((image < 128).any(axis=1))
    if dark_rows.size == 0:
        return page_h_pt
    return page_h_pt * (image.shape[0] - 1 - dark_rows[-1]) / image.shape[0]


def _stream(dictionary: str, data: bytes) -> bytes:
    return dictionary.encode() + b"\nstream\n" + data + b"\nendstream"


def _assemble(objects: list[bytes]) -> bytes:
    """Number the objects 1..n, then add the cross-reference table and trailer with exact byte offsets."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)
