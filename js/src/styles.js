// The shadow-DOM styles of the segmentation stand-ins (Ground Truth's worker console look, approximately).

export const CSS = `
:host { display: block; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #16191f; }
.root { display: grid; grid-template-columns: minmax(180px, 260px) 1fr minmax(160px, 240px); gap: 12px; }
aside { background: #fafafa; border: 1px solid #eaeded; border-radius: 4px; padding: 10px; }
.header { font-size: 16px; font-weight: 600; margin: 0 0 8px; }
.toolbar { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin-bottom: 8px; }
.toolbar button { font: inherit; padding: 4px 10px; border: 1px solid #879596; background: #fff; border-radius: 3px; cursor: pointer; }
.toolbar button[aria-pressed="true"] { background: #0073bb; color: #fff; border-color: #0073bb; }
.toolbar button:disabled { opacity: .45; cursor: default; }
.toolbar label { display: inline-flex; gap: 4px; align-items: center; margin-left: 8px; }
.toolbar input[type=range] { width: 90px; }
.workarea { overflow: auto; max-height: 80vh; border: 1px solid #d5dbdb; background: #f2f3f3; }
.stage { position: relative; line-height: 0; }
.stage canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; image-rendering: pixelated; }
.stage canvas.image { position: relative; }
.stage canvas.ui { cursor: crosshair; touch-action: none; }
.message { min-height: 1.4em; margin-top: 6px; color: #545b64; }
.message.error { color: #d13212; }
.help { margin: 6px 0 0; padding-left: 18px; color: #545b64; font-size: 12px; }
.help li { margin: 1px 0; }
.labels ul { list-style: none; margin: 0; padding: 0; }
.labels li.label { margin: 2px 0; }
.labels .row { display: flex; align-items: center; gap: 6px; padding: 4px 6px; border-radius: 3px; cursor: pointer; }
.labels .row[aria-selected="true"] { background: #d9edf7; outline: 1px solid #0073bb; }
.labels .swatch { width: 14px; height: 14px; border-radius: 2px; border: 1px solid #0003; flex: none; }
.labels .instances { margin-left: 18px; }
.labels button.add-instance { font: inherit; font-size: 12px; margin: 2px 0 4px 24px; cursor: pointer; }
.labels h4, aside h4 { margin: 0 0 6px; font-size: 14px; }
`;
