"""The grader's own answers, each computed *its own way*: direct sums over kernel offsets for the convolutions,
one output pixel at a time for im2col, the textbook formulas for BatchNorm and Adam, ``logaddexp`` for the loss,
a plain copy of the two GAN updates. Also the typical mistakes, computed the same way, so that a wrong answer can
be named. Only the grader imports this module: a student's process cannot read it (sandbox.py)."""
import numpy as np


def conv_reference(x, weight, bias, s, p):
    """y[n, o, i, j] = sum_{c,u,v} W[o, c, u, v] x_pad[n, c, s i + u, s j + v] + b[o], by kernel offsets."""
    n, c, h, w = x.shape
    o, _, k, _ = weight.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    y = np.zeros((n, o, ho, wo))
    for u in range(k):
        for v in range(k):
            y += np.einsum("nchw,oc->nohw", xpad[:, :, u:u + s * ho:s, v:v + s * wo:s], weight[:, :, u, v])
    return y + (0 if bias is None else bias.reshape(1, -1, 1, 1))


def conv_gradients(x_shape, x, weight, G, s, p, flip=False, place_stride=None, overwrite=False, rotate=False):
    """(dL/dx, dL/dW, dL/db) of conv_reference for the upstream gradient G (x may be None: then dL/dW is zero).

    Typical mistakes: ``flip`` swaps the kernel's u and v in dL/dx; ``place_stride`` lays the columns of dL/dx
    back with another stride than the forward's (a stride that was not passed on); ``overwrite`` lets each
    kernel offset's window overwrite the pixels where windows overlap instead of adding to them; ``rotate`` turns
    each kernel by 180 degrees (the flip of a "true" convolution)."""
    n, c, h, w = x_shape
    k = weight.shape[2]
    ho, wo = G.shape[2:]
    t = place_stride or s
    dxpad = np.zeros((n, c, max(h + 2 * p, t * (ho - 1) + k), max(w + 2 * p, t * (wo - 1) + k)))
    dW = np.zeros_like(weight)
    xpad = None if x is None else np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    kernel = weight.transpose(0, 1, 3, 2) if flip else weight[:, :, ::-1, ::-1] if rotate else weight
    for u in range(k):
        for v in range(k):
            if xpad is not None:
                dW[:, :, u, v] = np.einsum("nohw,nchw->oc", G, xpad[:, :, u:u + s * ho:s, v:v + s * wo:s])
            window = np.einsum("nohw,oc->nchw", G, kernel[:, :, u, v])
            if overwrite:
                dxpad[:, :, u:u + t * ho:t, v:v + t * wo:t] = window
            else:
                dxpad[:, :, u:u + t * ho:t, v:v + t * wo:t] += window
    return dxpad[:, :, p:p + h, p:p + w], dW, G.sum(axis=(0, 2, 3))


def conv_transpose_reference(x, weight, s, p, **mistake):
    """y = convT(x): the input gradient of the conv C_out -> C_in with the same weight, x in the place of G."""
    n, _, size, _ = x.shape
    k = weight.shape[2]
    out = (size - 1) * s - 2 * p + k
    return conv_gradients((n, weight.shape[1], out, out), None, weight, x, s, p, **mistake)[0]


def window_count(in_hw, out_hw, k, s, p):
    """(H, W): how many windows add onto each output pixel when the in_hw pixels each paint a k x k window with
    stride s and the padding p is cropped (convT's output, or the input gradient of a conv)."""
    counts = []
    for size, out in zip(in_hw, out_hw):
        count = np.zeros(s * size + k + out + 2 * p)
        for i in range(size):
            count[s * i:s * i + k] += 1
        counts.append(count[p:p + out])
    return counts[0][:, None] * counts[1][None, :]


def im2col_reference(x, k, s, p):
    """cols[n, c, u, v, i, j] = x_pad[n, c, s i + u, s j + v], one output pixel at a time."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.zeros((n, c, k, k, ho, wo))
    for i in range(ho):
        for j in range(wo):
            cols[:, :, :, :, i, j] = xpad[:, :, s * i:s * i + k, s * j:s * j + k]
    return cols


def im2col_shape(x_shape, k, s, p):
    n, c, h, w = x_shape
    return n, c, k, k, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1


def batchnorm_backward_reference(x, g, gamma, eps, terms=("mean", "variance"), reduce="mean", axes=(0, 2, 3),
                                 use_gamma=True, variance_sign=-1):
    """dL/dx of BatchNorm2d in train mode. The keywords make the typical mistakes: ``terms`` leaves out the
    mean's or the variance's term, ``reduce`` sums where the means belong, ``axes`` averages g over fewer axes,
    ``use_gamma`` leaves gamma out, ``variance_sign`` adds the variance's term."""
    mean, var = x.mean(axis=(0, 2, 3), keepdims=True), x.var(axis=(0, 2, 3), keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std
    scale = (gamma.reshape(1, -1, 1, 1) if use_gamma else 1) * inv_std
    average = getattr(np, reduce)
    mean_term = average(g, axis=axes, keepdims=True) if "mean" in terms else 0
    variance_term = xhat * average(g * xhat, axis=axes, keepdims=True) if "variance" in terms else 0
    return scale * (g - mean_term + variance_sign * variance_term)


def bce_with_logits_reference(x, t):
    """(loss, dL/dx) of the mean BCE from logits, by logaddexp."""
    sigmoid = np.exp(-np.logaddexp(0, -x))
    return float(np.mean(np.logaddexp(0, x) - t * x)), (sigmoid - t) / x.size


def bce_naive(x, t):
    """The loss from log(sigmoid) and log(1 - sigmoid): inf or nan where |x| is large (a typical mistake)."""
    with np.errstate(all="ignore"):
        sigmoid = 1 / (1 + np.exp(-x))
        return float(np.mean(-t * np.log(sigmoid) - (1 - t) * np.log(1 - sigmoid)))


def adam_reference(w, grads, lr, b1, b2, eps, bias_correction=True, step_offset=0, eps_inside=False):
    """w after one Adam step per gradient; the keyword arguments make the typical mistakes."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    with np.errstate(all="ignore"):
        for t, g in enumerate(grads, start=1):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g ** 2
            c = t + step_offset
            m_hat, v_hat = (m / (1 - b1 ** c), v / (1 - b2 ** c)) if bias_correction else (m, v)
            w = w - lr * m_hat / (np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps)
    return w


def d_step_reference(D, opt_D, loss, real, fake, fake_target=0.0, zero_between=False):
    opt_D.zero_grad()
    d_loss = loss(D(real), 1.0)
    D.backward(loss.backward(), need_input_grad=False)
    if zero_between:                                    # a mistake: the real batch's gradient is wiped
        opt_D.zero_grad()
    d_loss = d_loss + loss(D(fake), fake_target)
    D.backward(loss.backward(), need_input_grad=False)
    opt_D.step()
    return d_loss


def g_step_reference(G, D, opt_G, loss, fake, saturating=False, target=1.0):
    opt_G.zero_grad()
    D.requires_grad_(False)
    logits = D(fake)
    g_loss = -loss(logits, 0.0) if saturating else loss(logits, target)
    gradient = loss.backward()
    G.backward(D.backward(-gradient if saturating else gradient), need_input_grad=False)
    D.requires_grad_(True)
    opt_G.step()
    return g_loss


def project_pixels_reference(G, photo, z, steps, lr, h=1e-6, sphere=True, sign=1.0, b1=0.9, b2=0.999, eps=1e-8):
    """(z after ``steps`` Adam steps on the mean squared pixel distance of G(z) to photo, each z back on the sphere
    |z| = sqrt(nz); the distances before each step), with dd/dz by central differences (float64, G in eval mode),
    Adam written out. ``sphere=False`` (no projection) and ``sign=-1`` (ascent) are typical mistakes."""
    from ..backend import to_numpy

    def distance(v):                                    # (N,): each z's own face (eval mode: independent)
        diff = to_numpy(G(v)) - photo
        return (diff * diff).reshape(len(v), -1).mean(axis=1)

    z, m, v, distances = z.copy(), np.zeros_like(z), np.zeros_like(z), []
    for t in range(1, steps + 1):
        distances.append(distance(z))
        grad = np.zeros_like(z)
        for k in range(z.shape[1]):                     # each z's own entry k, all z at once
            step = np.zeros_like(z)
            step[:, k] = h
            grad[:, k, 0, 0] = (distance(z + step) - distance(z - step)) / (2 * h)
        grad *= sign
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad ** 2
        z = z - lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
        if sphere:
            z = z * np.sqrt(z.shape[1]) / np.sqrt((z * z).sum(axis=(1, 2, 3), keepdims=True))
    return z, np.stack(distances)
