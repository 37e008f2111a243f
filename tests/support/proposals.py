"""The proposal tool set up for headless tests: a small grid (the tool's default is 16 x 16) to keep the
suite quick on 2 cores, and the proposal cache the caller chooses."""

from __future__ import annotations

from gt_widget.segment.proposals import ProposalCache, ProposalSettings
from gt_widget.widget import SegmentationWidget
from gt_widget.widget.tools.proposal import ProposalTool


def proposal_tool(w: SegmentationWidget, grid: int, cache: ProposalCache | None = None) -> ProposalTool:
    """Activate ``w``'s proposal tool with a ``grid`` x ``grid`` point grid and ``cache`` (a fresh one when
    None: pass a shared cache to compute each image's proposals once across tests)."""
    w.tool = "proposal"
    tool = w.tools["proposal"]
    assert isinstance(tool, ProposalTool)
    tool.points_per_side = grid
    tool.settings = ProposalSettings(points_per_side=grid)
    tool.cache = cache if cache is not None else ProposalCache()
    return tool
