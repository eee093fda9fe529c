/** A horizontal bar chart as SVG text, drawn from the measured numbers. */

export interface Bar {
  label: string;
  value: number;
  /** Shown at the end of the bar, such as "123,456/s". */
  caption: string;
  highlight?: boolean;
}

function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

export function barChart(title: string, bars: Bar[]): string {
  const width = 760;
  const labelWidth = 190;
  const barArea = width - labelWidth - 170;
  const rowHeight = 34;
  const top = 44;
  const height = top + bars.length * rowHeight + 16;
  const max = Math.max(...bars.map((bar) => bar.value));
  const rows = bars.map((bar, index) => {
    const y = top + index * rowHeight;
    const length = Math.max(2, (bar.value / max) * barArea);
    const fill = bar.highlight ? "#2f5fb3" : "#9aa5b8";
    return [
      `<text x="${labelWidth - 10}" y="${y + 17}" text-anchor="end">${escape(bar.label)}</text>`,
      `<rect x="${labelWidth}" y="${y + 3}" width="${length.toFixed(1)}" height="${
        rowHeight - 10
      }" rx="3" fill="${fill}"/>`,
      `<text x="${(labelWidth + length + 8).toFixed(1)}" y="${y + 17}">${
        escape(bar.caption)
      }</text>`,
    ].join("");
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="16" y="26" font-size="15" font-weight="600">${escape(title)}</text>`,
    ...rows,
    "</svg>",
    "",
  ].join("\n");
}
