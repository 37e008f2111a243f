"""SAM's prompt encoder: points, boxes and a low-resolution mask -> sparse and dense embeddings.

Coordinates reaching this module are (x, y) pixels of the *resized, padded* model input (S x S, e.g.
1024), not of the original image; the predictor does that scaling. Each point is shifted by +0.5 (pixel
centre), divided by S and encoded with random Fourier features (a fixed Gaussian 2x128 matrix from the
checkpoint): [sin(2 pi (2p-1) G), cos(...)]. Learned embeddings are added per label: 0 negative point,
1 positive point, 2 / 3 box top-left / bottom-right corner, -1 "not a point" (padding, replaces the
encoding entirely).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gt_widget.segment.mobilesam.tiny_vit import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Random-Fourier positional encoding of points normalised to [0, 1]^2."""

    positional_encoding_gaussian_matrix: torch.Tensor

    def __init__(self, num_pos_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((2, num_pos_feats)))

    def encode(self, coords01: torch.Tensor) -> torch.Tensor:
        """(..., 2) points in [0, 1] (x, y) -> (..., 2 * num_pos_feats)."""
        proj = (2 * coords01 - 1) @ self.positional_encoding_gaussian_matrix
        proj = 2 * math.pi * proj
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)

    def grid(self, size: tuple[int, int]) -> torch.Tensor:
        """(C, h, w) encoding of the centres of an h x w grid (the dense image positional encoding)."""
        h, w = size
        dev = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=dev, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=dev, dtype=torch.float32) + 0.5) / w
        coords = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
        return self.encode(coords).permute(2, 0, 1)

    def encode_pixels(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """(B, N, 2) (x, y) pixel coordinates in an image of (h, w) = ``image_size`` -> (B, N, C)."""
        h, w = image_size
        size = torch.tensor([float(w), float(h)], dtype=torch.float32, device=coords.device)
        return self.encode(coords.to(torch.float32) / size)


class PromptEncoder(nn.Module):
    """Embeds prompts for the mask decoder (SAM's design; parameter names as in the checkpoint)."""

    def __init__(
        self,
        embed_dim: int = 256,
        image_embedding_size: int = 64,
        input_image_size: int = 1024,
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.image_embedding_size = (image_embedding_size, image_embedding_size)
        self.input_image_size = (input_image_size, input_image_size)
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, embed_dim) for _ in range(4)])
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self, embedding_size: int | None = None) -> torch.Tensor:
        """(1, C, e, e) positional encoding of the image-embedding grid (e = 64 for a 1024 input)."""
        size = (embedding_size, embedding_size) if embedding_size else self.image_embedding_size
        return self.pe_layer.grid(size).unsqueeze(0)

    def _weight(self, i: int) -> torch.Tensor:
        emb: nn.Embedding = self.point_embeddings[i]  # type: ignore[assignment]
        return emb.weight

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor, pad: bool, input_size: int) -> torch.Tensor:
        """(B, N, 2) input-frame points + (B, N) labels -> (B, N[+1], C); ``pad`` appends a not-a-point."""
        coords = coords + 0.5
        if pad:
            b = coords.shape[0]
            coords = torch.cat([coords, coords.new_zeros((b, 1, 2))], dim=1)
            labels = torch.cat([labels, labels.new_full((b, 1), -1)], dim=1)
        emb = self.pe_layer.encode_pixels(coords, (input_size, input_size))
        lab = labels[..., None]
        emb = torch.where(lab == 0, emb + self._weight(0), emb)
        emb = torch.where(lab == 1, emb + self._weight(1), emb)
        return torch.where(lab == -1, self.not_a_point_embed.weight.expand_as(emb), emb)

    def embed_boxes(self, boxes: torch.Tensor, input_size: int) -> torch.Tensor:
        """(B, 4) XYXY input-frame boxes -> (B, 2, C) corner embeddings."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)
        emb = self.pe_layer.encode_pixels(corners, (input_size, input_size))
        corner_w = torch.cat([self._weight(2), self._weight(3)], dim=0)
        return emb + corner_w

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
        input_size: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> sparse (B, N, C) and dense (B, C, e, e) embeddings.

        ``input_size`` is the model input side S the coordinates refer to (default: 1024, embedding
        S / 16); ``masks`` are (B, 1, 4e, 4e) low-resolution logits.
        """
        size = input_size or self.input_image_size[0]
        if points is not None:
            bs = points[0].shape[0]
        elif boxes is not None:
            bs = boxes.shape[0]
        elif masks is not None:
            bs = masks.shape[0]
        else:
            bs = 1
        dev = self.no_mask_embed.weight.device
        parts = [torch.empty((bs, 0, self.embed_dim), device=dev)]
        if points is not None:
            parts.append(self.embed_points(points[0], points[1], pad=boxes is None, input_size=size))
        if boxes is not None:
            parts.append(self.embed_boxes(boxes, size))
        sparse = torch.cat(parts, dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_dense(bs, size)
        return sparse, dense

    def no_mask_dense(self, batch: int, input_size: int) -> torch.Tensor:
        """The dense prompt without a mask: the learned no-mask embedding broadcast (stride 0, not copied)
        over a (batch, C, S/16, S/16) grid for encoder input side S = ``input_size``."""
        e = input_size // 16
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, e, e)
