export { DASHBOARD_ASSETS } from "./assets.js";
