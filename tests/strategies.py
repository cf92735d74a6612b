"""Hypothesis strategies shared by the layer tests: small convolution shapes that fit."""
from hypothesis import assume
from hypothesis import strategies as st

from tinygan.nn import reference as F


@st.composite
def conv_cases(draw):
    """Conv2d hyper-parameters and an input size the kernel fits into (square and rectangular)."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 6))
    w = draw(st.integers(max(1, kw - 2 * pw), 6))
    return dict(n=draw(st.integers(1, 2)), cin=draw(st.integers(1, 5)), cout=draw(st.integers(1, 5)),
                kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), hw=(h, w), bias=draw(st.booleans()))


@st.composite
def conv_transpose_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    oph, opw = draw(st.integers(0, sh - 1)), draw(st.integers(0, sw - 1))
    h, w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    assume(F.conv_transpose2d_output_size(h, kh, sh, ph, oph) >= 1)
    assume(F.conv_transpose2d_output_size(w, kw, sw, pw, opw) >= 1)
    return dict(n=draw(st.integers(1, 2)), cin=draw(st.integers(1, 5)), cout=draw(st.integers(1, 5)),
                kernel=(kh, kw), stride=(sh, sw), padding=(ph, pw), output_padding=(oph, opw), hw=(h, w),
                bias=draw(st.booleans()))
