"""The trained ``integer-hyperprior`` model in exact integer arithmetic, and its export from the float model.

Why: a float network's outputs differ in their last bits between CPUs (SIMD kernels), thread counts,
batch sizes and GPUs; rounded latents, the Gaussian scale that selects each latent's entropy
table, and rounded pixels then flip now and then, so a stream written on one machine can decode
to other pixels, or not at all, on another (CompressAI issues #279, #309, #340). Here every number
the encoder writes and the decoder reads is an integer, and every operation is exact:

* weights are integers (int16, per output channel scaled by 2^shift), biases integers, activations
  fixed-point integers with :data:`ACTIVATION_BITS` fractional bits;
* a convolution is ``unfold`` + matrix product in float64 on integer values: every product and sum
  is an integer below 2^53 (checked at run time), so it is exact in any summation order, on any
  BLAS, thread count, batch size or device; rescaling multiplies by a power of two and floors;
* ReLU, ``pixel_shuffle``, the rate point's gains (integers with :data:`GAIN_BITS` fractional
  bits) and the rounding to latents and pixels are exact;
* the entropy model of each latent is chosen by comparing the integer log-scale with integer
  thresholds; the coder's tables (:func:`entropy_tables`) are computed once, at export, and stored.

The float model (:mod:`.network`) is what trains; :func:`export` turns it into the tensors of this
module (stored in the checkpoint under ``exact``); :class:`ExactModel` codes with them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

ACTIVATION_BITS = 12
GAIN_BITS = 14
WEIGHT_LIMIT = 2**15 - 1  # int16
EXACT_LIMIT = 2.0**52  # every accumulator stays below this: float64 holds it exactly
SCALE_LEVELS = 64  # Gaussian entropy tables, log-spaced between the network's scale bounds


class Layer(NamedTuple):
    key: str  # the convolution's state-dict prefix in the float model
    stride: int
    upsample: bool  # followed by pixel_shuffle(2)
    relu: bool  # ReLU after it (after the shuffle)


def plan(stages: int) -> dict[str, list[Layer]]:
    """The four transforms' layers, in the float model's module names (see :mod:`.network`)."""
    def chain(keys: list[str], stride: int, upsample: bool) -> list[Layer]:
        return [Layer(k, stride, upsample, i < len(keys) - 1) for i, k in enumerate(keys)]

    g_a = chain([f"g_a.{2 * i}" for i in range(stages)], 2, False)
    g_s = chain([f"g_s.{2 * i}.conv" for i in range(stages)], 1, True)
    h_a = [Layer("h_a.0", 1, False, True), Layer("h_a.2", 2, False, False)]
    h_s = [Layer("h_s.0.conv", 1, True, True), Layer("h_s.2", 1, False, False)]
    return {"g_a": g_a, "g_s": g_s, "h_a": h_a, "h_s": h_s}


# where each transform's input comes from, in fractional bits, and what its output is scaled by
INPUT_BITS = {"g_a": 0, "h_a": ACTIVATION_BITS, "h_s": 0, "g_s": ACTIVATION_BITS}  # pixels and z are integers
FIRST_LAYER_FOLD = {"g_a": 1.0 / 255.0}  # the float model sees pixels / 255
LAST_LAYER_FOLD = {"g_s": 255.0}  # ... and makes pixels / 255


def _ans():
    """CompressAI's rANS coder (importing compressai needs torchvision made importable first)."""
    import taskcodec

    taskcodec.ensure_torchvision()
    import compressai.ans

    return compressai.ans


class ExactOverflow(ArithmeticError):
    """An accumulator left the range float64 holds exactly (the result would not be exact)."""


# ---------------------------------------------------------------------------------------------- export
def _export_conv(weight, bias, input_bits: int, in_fold: float, out_fold: float) -> dict[str, Any]:
    import torch

    w = weight.detach().to("cpu", torch.float64) * (in_fold * out_fold)
    b = bias.detach().to("cpu", torch.float64) * out_fold
    peak = w.abs().flatten(1).amax(1)
    shift = torch.where(peak > 0, torch.floor(torch.log2(WEIGHT_LIMIT / peak.clamp_min(1e-300))), torch.zeros_like(peak))
    shift = shift.clamp(-16, 40)
    w_int = torch.round(w * torch.exp2(shift)[:, None, None, None])
    b_int = torch.round(b * torch.exp2(shift + input_bits))
    if w_int.abs().max() > WEIGHT_LIMIT or b_int.abs().max() >= EXACT_LIMIT:
        raise ExactOverflow("a weight or bias does not fit its integer range")
    return {"weight": w_int.to(torch.int16), "bias": b_int.to(torch.int64), "shift": shift.to(torch.int32)}


def export(model) -> dict[str, Any]:
    """The integer tensors of a trained :class:`.network.GainedHyperprior` (a flat dict of tensors)."""
    import torch

    params = dict(model.named_parameters())
    out: dict[str, Any] = {}
    for transform, layers in plan(model.stages).items():
        bits = INPUT_BITS[transform]
        for i, layer in enumerate(layers):
            in_fold = FIRST_LAYER_FOLD.get(transform, 1.0) if i == 0 else 1.0
            out_fold = LAST_LAYER_FOLD.get(transform, 1.0) if i == len(layers) - 1 else 1.0
            tensors = _export_conv(params[f"{layer.key}.weight"], params[f"{layer.key}.bias"], bits, in_fold, out_fold)
            out.update({f"{layer.key}.{name}": t for name, t in tensors.items()})
            bits = ACTIVATION_BITS
    with torch.no_grad():
        gain = model.log_gain.detach().double().exp()
        inverse_gain = model.log_inverse_gain.detach().double().exp()
    out["gain"] = torch.round(gain * 2**GAIN_BITS).to(torch.int64)
    out["inverse_gain"] = torch.round(inverse_gain * 2**GAIN_BITS).to(torch.int64)
    out.update(entropy_tables(model))
    return out


def entropy_tables(model) -> dict[str, Any]:
    """The coder's integer tables: for ``z``, one per channel over an integer support; for ``y``, one per
    Gaussian scale level, and the integer log-scale thresholds between levels."""
    import torch

    _ans()
    from compressai.entropy_models import GaussianConditional

    from taskcodec_plugins.codecs.integer_hyperprior.network import LOG_SCALE_MAX, LOG_SCALE_MIN

    eb = model.entropy_bottleneck
    with torch.no_grad():
        quantiles = eb.quantiles.detach()[:, 0, :]  # Nz x (low, median, high)
        low = torch.floor(quantiles[:, 0]).to(torch.int64)
        high = torch.ceil(quantiles[:, 2]).to(torch.int64).maximum(low)
        length = high - low + 1
        samples = torch.arange(int(length.max()))[None, :] + low[:, None]
        pmf, lower, upper = eb._likelihood(samples[:, None, :].to(quantiles.dtype), stop_gradient=True)
        pmf = pmf[:, 0, :]
        tail = torch.sigmoid(lower[:, 0, :1]) + torch.sigmoid(-upper[:, 0, -1:])
        z_cdf = eb._pmf_to_cdf(pmf, tail, length.int(), int(length.max()))
        log_levels = torch.linspace(LOG_SCALE_MIN, LOG_SCALE_MAX, SCALE_LEVELS, dtype=torch.float64)
        gc = GaussianConditional(log_levels.exp().tolist())
        gc.update()
        step = (LOG_SCALE_MAX - LOG_SCALE_MIN) / (SCALE_LEVELS - 1)
        thresholds = torch.round((log_levels[:-1] + step / 2) * 2**ACTIVATION_BITS).to(torch.int64)
    return {"z_cdf": z_cdf.to(torch.int32), "z_cdf_length": (length + 2).to(torch.int32), "z_offset": low.to(torch.int32),
            "y_cdf": gc._quantized_cdf.to(torch.int32), "y_cdf_length": gc._cdf_length.to(torch.int32),
            "y_offset": gc._offset.to(torch.int32), "log_scale_thresholds": thresholds}


# ---------------------------------------------------------------------------------------------- coding
@dataclass
class Latents:
    """What one batch of images codes to (integers, as int64 tensors)."""

    y: Any  # B x M x h x w
    z: Any  # B x Nz x h/2 x w/2


class ExactModel:
    """The integer model of a checkpoint on a device: the transforms, exact on any machine."""

    def __init__(self, exact: dict[str, Any], stages: int, in_channels: int, device: str = "cpu"):
        import torch

        self.stages = stages
        self.in_channels = in_channels
        self.device = device
        self.plan = plan(stages)
        self.tensors = {k: v.to(device, torch.float64) for k, v in exact.items()
                        if k.rsplit(".", 1)[-1] in ("weight", "bias")}
        self.shift = {k: v.to(torch.int64) for k, v in exact.items() if k.endswith(".shift")}
        self.gain = exact["gain"].to(device, torch.float64)
        self.inverse_gain = exact["inverse_gain"].to(device, torch.float64)
        self.thresholds = exact["log_scale_thresholds"].to(device)
        self.tables = {k: exact[k].tolist() for k in ("z_cdf", "z_cdf_length", "z_offset",
                                                       "y_cdf", "y_cdf_length", "y_offset")}
        # the rows of a table without its padding (what CompressAI's coder takes)
        self.z_cdfs = [row[: n] for row, n in zip(self.tables["z_cdf"], self.tables["z_cdf_length"])]
        self.y_cdfs = [row[: n] for row, n in zip(self.tables["y_cdf"], self.tables["y_cdf_length"])]
        self._cdf_tensors = {name: (exact[f"{name}_cdf"].to(torch.int64), exact[f"{name}_cdf_length"].to(torch.int64),
                                    exact[f"{name}_offset"].to(torch.int64)) for name in ("z", "y")}

    @property
    def downsampling(self) -> int:
        return 2 ** (self.stages + 1)

    def _conv(self, x, layer: Layer, input_bits: int, output_bits: int):
        import torch
        import torch.nn.functional as F

        w = self.tensors[f"{layer.key}.weight"]
        b = self.tensors[f"{layer.key}.bias"]
        shift = self.shift[f"{layer.key}.shift"]
        out_ch, _, k, _ = w.shape
        batch, _, height, width = x.shape
        pad = k // 2
        out_h = (height + 2 * pad - k) // layer.stride + 1
        out_w = (width + 2 * pad - k) // layer.stride + 1
        columns = F.unfold(x, k, padding=pad, stride=layer.stride)
        acc = torch.matmul(w.reshape(out_ch, -1), columns) + b[:, None]
        if bool((acc.abs() >= EXACT_LIMIT).any()):
            raise ExactOverflow(f"layer {layer.key}: an accumulator reached 2^52; the integer model is not exact here")
        scale = torch.exp2((output_bits - input_bits - shift).to(torch.float64)).to(x.device)
        out = torch.floor(acc * scale[:, None]).reshape(batch, out_ch, out_h, out_w)
        if layer.upsample:
            out = F.pixel_shuffle(out, 2)
        return out.clamp_min(0) if layer.relu else out

    def _transform(self, name: str, x):
        bits = INPUT_BITS[name]
        for layer in self.plan[name]:
            x = self._conv(x, layer, bits, ACTIVATION_BITS)
            bits = ACTIVATION_BITS
        return x

    @staticmethod
    def _round_fixed(x):
        import torch

        return torch.floor((x + 2 ** (ACTIVATION_BITS - 1)) * 2.0**-ACTIVATION_BITS)

    def analyse(self, pixels, index: int) -> Latents:
        """Pixels (B x C x H x W, integer values 0..255, sides multiples of :attr:`downsampling`) to latents."""
        import torch

        x = pixels.to(self.device, torch.float64)
        y = self._transform("g_a", x)
        y = torch.floor(y * self.gain[index][:, None, None] * 2.0**-GAIN_BITS)
        z = self._transform("h_a", y)
        return Latents(self._round_fixed(y).to(torch.int64), self._round_fixed(z).to(torch.int64))

    def scale_indexes(self, z):
        """Each latent's Gaussian table (int64, B x M x h x w) from the integer ``z``."""
        import torch

        log_scale = self._transform("h_s", z.to(self.device, torch.float64)).to(torch.int64)
        return torch.searchsorted(self.thresholds, log_scale.contiguous(), right=True)

    def synthesise(self, y, index: int):
        """Integer latents to pixels (uint8, B x C x H x W, the padded size)."""
        import torch

        a = torch.floor(y.to(self.device, torch.float64) * self.inverse_gain[index][:, None, None]
                        * 2.0 ** (ACTIVATION_BITS - GAIN_BITS))
        x = self._round_fixed(self._transform("g_s", a))
        return x.clamp_(0, 255).to(torch.uint8)


    # entropy coding ---------------------------------------------------------------------------------
    def _z_indexes(self, z) -> list[int]:
        channels, h, w = z.shape
        return [c for c in range(channels) for _ in range(h * w)]

    def code(self, z, y, indexes) -> bytes:
        """One image's rANS string: ``z`` (C x h x w int64), then ``y`` with its table ``indexes``."""
        encoder = _ans().BufferedRansEncoder()
        encoder.encode_with_indexes(z.reshape(-1).tolist(), self._z_indexes(z), self.z_cdfs,
                                    self.tables["z_cdf_length"], self.tables["z_offset"])
        encoder.encode_with_indexes(y.reshape(-1).tolist(), *self._y_tables(indexes))
        return encoder.flush()

    def _y_tables(self, indexes) -> tuple[list[int], list[list[int]], list[int], list[int]]:
        """The coder's arguments for ``y`` with only the tables these indexes use (handing all 64 rows of
        ~3,000 entries to the C++ coder per image costs more than the coding), indexes renumbered."""
        flat = indexes.reshape(-1).tolist()
        used = sorted(set(flat))
        position = {table: i for i, table in enumerate(used)}
        return ([position[t] for t in flat], [self.y_cdfs[t] for t in used],
                [self.tables["y_cdf_length"][t] for t in used], [self.tables["y_offset"][t] for t in used])

    def decode(self, strings: list[bytes], index: int, height: int, width: int):
        """Pixels (uint8, B x C x height x width) of rANS strings of rate point ``index`` at that padded size."""
        import torch

        RansDecoder = _ans().RansDecoder
        f = self.downsampling
        y_shape = (self.tensors["h_s.2.bias"].shape[0], height * 2 // f, width * 2 // f)
        z_shape = (self.tensors["h_a.2.bias"].shape[0], height // f, width // f)
        z_indexes = self._z_indexes(torch.empty(z_shape))
        decoders, zs = [], []
        for string in strings:
            decoder = RansDecoder()
            decoder.set_stream(string)
            zs.append(decoder.decode_stream(z_indexes, self.z_cdfs, self.tables["z_cdf_length"], self.tables["z_offset"]))
            decoders.append(decoder)
        z = torch.tensor(zs, dtype=torch.int64).reshape(len(strings), *z_shape)
        indexes = self.scale_indexes(z).cpu()
        ys = [decoder.decode_stream(*self._y_tables(idx)) for decoder, idx in zip(decoders, indexes)]
        y = torch.tensor(ys, dtype=torch.int64).reshape(len(strings), *y_shape)
        return self.synthesise(y, index)

    def estimated_bits(self, z, y, indexes) -> float:
        """-log2 of the tables' probabilities of the symbols (an escaped symbol: the escape's probability plus
        about 8 bits per 4-bit group of its bypass code, CompressAI's layout)."""
        import torch

        total = 0.0
        for name, symbols, idx in (("z", z, torch.arange(z.shape[0])[:, None, None].expand_as(z)), ("y", y, indexes)):
            cdf, length, offset = self._cdf_tensors[name]
            idx = idx.reshape(-1).cpu()
            value = symbols.reshape(-1).cpu() - offset[idx]
            top = length[idx] - 2
            inside = (value >= 0) & (value < top)
            v = torch.where(inside, value, top)
            p = (cdf[idx, v + 1] - cdf[idx, v]).clamp_min(1).double() / 65536.0
            total += float(-torch.log2(p).sum())
            raw = torch.where(value < 0, -2 * value - 1, 2 * (value - top))[~inside]
            if raw.numel():
                groups = ((torch.floor(torch.log2(raw.double().clamp_min(1))) + 1 + 3) // 4).clamp_min(1)
                total += float((8 * groups).sum())
        return total
