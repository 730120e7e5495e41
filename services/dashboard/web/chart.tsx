import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import type { ThroughputPoint } from "./types.js";

/** The last hour's requests/s and tokens/s as one uPlot chart with an axis each. */
export function ThroughputChart({ points }: { points: ThroughputPoint[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = (): uPlot.AlignedData => [points.map((p) => p.t), points.map((p) => p.requests_per_sec), points.map((p) => p.tokens_per_sec)];
  useEffect(() => {
    if (!box.current) return;
    const width = Math.max(320, box.current.clientWidth);
    plot.current = new uPlot(
      {
        width,
        height: 220,
        scales: { x: { time: true }, req: { auto: true }, tok: { auto: true } },
        series: [
          {},
          { label: "requests/s", scale: "req", stroke: "#1d4ed8", width: 2 },
          { label: "tokens/s", scale: "tok", stroke: "#b45309", width: 2 },
        ],
        axes: [{}, { scale: "req", label: "requests/s" }, { scale: "tok", side: 1, label: "tokens/s", grid: { show: false } }],
      },
      data(),
      box.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => plot.current?.setData(data()), [points]);
  return <div ref={box} class="chart" role="img" aria-label="Throughput over the last hour: requests per second and tokens per second" />;
}
