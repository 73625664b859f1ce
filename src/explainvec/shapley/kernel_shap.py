"""KernelSHAP with the efficiency-constrained least squares of Covert & Lee (2021)."""

from __future__ import annotations

import torch

from .game import Game, evaluate_in_chunks
from .sampling import sample_kernel_coalitions
from .values import ShapleyValues

PINV_RTOL = 1e-10
"""Eigenvalues of Â below this fraction of the largest are dropped (Â is singular for tiny budgets)."""


def kernel_shap(
    game: Game,
    budget: int,
    *,
    paired: bool = True,
    generator: torch.Generator | None = None,
    chunk_size: int = 1024,
    device: torch.device | str | None = None,
) -> ShapleyValues:
    """KernelSHAP from ``budget`` evaluations per input: v(∅), v(all) and budget − 2 sampled coalitions.

    With Â = mean z zᵀ, b̂ = mean z (v(z) − v(∅)) and c = v(all) − v(∅), returns
    φ = Â⁻¹(b̂ − 1 (1ᵀÂ⁻¹b̂ − c) / (1ᵀÂ⁻¹1)), so Σ_j φ_j = c exactly. Â⁻¹ is the pseudo-inverse
    (relative cutoff ``PINV_RTOL``), equal to the inverse whenever Â is well conditioned.

    φ = M b̂ + Â⁻¹1 c / (1ᵀÂ⁻¹1) with M = Â⁻¹ − Â⁻¹1 1ᵀÂ⁻¹ / (1ᵀÂ⁻¹1). Standard errors are
    sqrt(diag(M Ĉov(g) Mᵀ) / K) over K i.i.d. draws (an (S, complement) pair when ``paired``) with
    g_k = mean over the draw of z (v(z) − v(∅) − zᵀφ): the delta-method linearisation of φ in (Â, b̂),
    which, unlike holding Â fixed, accounts for the noise in Â (e.g. it is 0 where φ is exact).
    They are None with fewer than two draws and unreliable when K is not well above P.
    Coalitions are sampled on ``device`` (default: the generator's device, else CPU).
    """
    num_players, num_inputs = game.num_players, game.num_inputs
    if num_players < 2:
        raise ValueError(f"kernel_shap needs at least 2 players, got {num_players}")
    if budget < 4:
        raise ValueError(f"budget must be at least 4 (v(∅), v(all) and two sampled coalitions), got {budget}")
    num_samples = budget - 2
    if paired and num_samples % 2:
        raise ValueError(
            f"with paired sampling the budget minus v(∅) and v(all) must be even; budget={budget} leaves "
            f"{num_samples} sampled coalitions (use {budget - 1} or {budget + 1})"
        )
    if device is None and generator is not None:
        device = generator.device
    samples = sample_kernel_coalitions(
        num_inputs, num_players, num_samples, paired=paired, generator=generator, device=device
    )
    ends = torch.zeros(num_inputs, 2, num_players, dtype=torch.bool, device=samples.device)
    ends[:, 1] = True
    outputs = evaluate_in_chunks(game, torch.cat([ends, samples], dim=1), chunk_size)
    dtype = torch.promote_types(outputs.dtype, torch.float32)
    outputs = outputs.double()
    base, full, sampled = outputs[:, 0], outputs[:, 1], outputs[:, 2:]

    z = samples.to(device=outputs.device, dtype=torch.float64)
    gains = sampled - base[:, None]
    a_hat = torch.einsum("bnp,bnq->bpq", z, z) / num_samples
    b_hat = torch.einsum("bnp,bnc->bpc", z, gains) / num_samples
    total = full - base
    a_inv = torch.linalg.pinv(a_hat, rtol=PINV_RTOL, hermitian=True)
    a_inv_one = a_inv.sum(-1)
    one_a_inv_one = a_inv_one.sum(-1)[:, None, None]
    projection = a_inv - a_inv_one[:, :, None] * a_inv_one[:, None, :] / one_a_inv_one
    offset = a_inv_one[:, :, None] * total[:, None, :] / one_a_inv_one
    values = projection @ b_hat + offset
    residuals = gains - z @ values
    std_errors = _std_errors(projection, z, residuals, draw_size=2 if paired else 1)
    return ShapleyValues(
        values=values.to(dtype),
        std_errors=None if std_errors is None else std_errors.to(dtype),
        evaluations=budget,
        base=base.to(dtype),
        full=full.to(dtype),
    )


def _std_errors(
    projection: torch.Tensor, z: torch.Tensor, targets: torch.Tensor, draw_size: int
) -> torch.Tensor | None:
    """sqrt(Var(u_k) / K) ``[B, P, C]`` for u_k = M g_k, g_k = mean of z · target over draw k.

    A draw is ``draw_size`` consecutive samples. Σ_k u_k² is assembled from [B, K, P] and [B, K, C]
    factors, so no [B, K, P, C] tensor is built.
    """
    num_inputs, num_samples, num_players = z.shape
    num_draws = num_samples // draw_size
    if num_draws < 2:
        return None
    mean = projection @ (z.transpose(1, 2) @ targets) / num_samples
    projected = (z @ projection.transpose(1, 2)).view(num_inputs, num_draws, draw_size, num_players)
    targets = targets.view(num_inputs, num_draws, draw_size, -1)
    second_moment = sum(
        torch.einsum(
            "bkp,bkc->bpc", projected[:, :, i] * projected[:, :, j], targets[:, :, i] * targets[:, :, j]
        )
        for i in range(draw_size)
        for j in range(draw_size)
    ) / (draw_size**2 * num_draws)
    variance = (second_moment - mean**2).clamp(min=0) * num_draws / (num_draws - 1)
    return (variance / num_draws).sqrt()
