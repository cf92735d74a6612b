"""Every graded part of the course, in one table: the lesson that marks it, the library code it must not call,
and the other parts its probe runs. Its points and hint are in the lesson's ``### BEGIN SOLUTION name (N points)``
marker and the hint line below it (parts.py), where a student's copy shows them; tests/test_course.py holds
this table and the lessons' markers to each other. Its inputs and probe are ``probes.inputs_<name>`` and
``probes.probe_<name>`` (the student's process), its check ``checks.check_<name>`` (the grader's).
"""
from dataclasses import dataclass

# The library's own implementation of a part (names that start so): a part's code must not call it.
FAST_PATH = ("tinygan.nn.fast", "tinygan.nn.paths")      # fast, fast_im2col; the path's set of functions
FID_CONV = ("tinygan.fid.conv",)                          # the Inception's own im2col and conv


@dataclass(frozen=True)
class Part:
    name: str
    lesson: str                  # the lesson file (stem) that marks it
    forbidden: tuple             # library names the part must not call
    needs: tuple = ()            # other parts its probe runs: given the teacher's solution of each


PARTS = {part.name: part for part in (
    Part("linear_backward", "02_linear_gradcheck", ("tinygan.nn.Linear", "tinygan.nn.linear")),
    Part("im2col", "04_conv_im2col", ("tinygan.nn.reference.im2col", "tinygan.nn.conv") + FAST_PATH + FID_CONV),
    Part("conv_backward", "04_conv_im2col", ("tinygan.nn.Conv2d", "tinygan.nn.conv", "tinygan.nn.reference.conv2d",
                                             "tinygan.nn.naive") + FAST_PATH + FID_CONV, needs=("im2col",)),
    Part("conv_transpose_forward", "05_conv_transpose",
         ("tinygan.nn.ConvTranspose2d", "tinygan.nn.conv", "tinygan.nn.reference.conv", "tinygan.nn.naive",
          "tinygan.nn.Conv2d") + FAST_PATH + FID_CONV),
    Part("batchnorm_backward", "06_batchnorm",
         ("tinygan.nn.BatchNorm2d", "tinygan.nn.batchnorm", "tinygan.nn.reference.batchnorm") + FAST_PATH),
    Part("bce_with_logits", "07_bce_logits", ("tinygan.losses",)),
    Part("adam_step", "08_adam_vs_sgd", ("tinygan.optim.Adam",)),
    Part("d_step", "13_train_gan", ("tinygan.train",)),
    Part("g_step", "13_train_gan", ("tinygan.train",)),
    Part("input_gradient", "14_explore_generator", ("tinygan.judge",)),
    Part("project_pixels", "17_find_a_photo", ("tinygan.projection",)),
)}


def forbidden(part):
    """The library names ``part`` must not call (none for a part that is not graded)."""
    return PARTS[part].forbidden if part in PARTS else ()


def needs(part):
    return PARTS[part].needs if part in PARTS else ()
