// The tests' and benchmarks' seeded PRNG is engine-sim's own, so a workload a test generates and
// the sim's seeded behaviour come from one implementation.
export { mulberry32 } from "@barge/engine-sim";
