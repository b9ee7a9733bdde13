/** The explorer page: prompt bar, view tabs and the current view, all driven by the URL's query string. Here the
 * parts are wired: the API (the server's, or the run a report or widget carries), the app, its header and its drops. */

import "./style.css";
import { HttpApi, type Api } from "./api/client";
import { EmbeddedApi, embeddedRun } from "./api/embedded";
import { App, layoutPanes, stateFromUrl } from "./app";
import { drawPage } from "./draw-page";
import { installHooks } from "./hooks";
import { acceptDroppedTraces } from "./open-trace";
import { buildHeader } from "./prompt-bar";

const embedded = document.getElementById("lmxray-data"); // a report or widget carries its run; a served page asks
const api: Api = embedded ? new EmbeddedApi(embeddedRun(embedded.textContent ?? "")) : servedApi();

function servedApi(): Api {
  const token = new URLSearchParams(location.search).get("token") ?? sessionStorage.getItem("lmxray-token");
  if (token) sessionStorage.setItem("lmxray-token", token);
  return new HttpApi(new URL("api/", new URL(".", document.baseURI)), token);
}
installHooks();

const app = new App(api, layoutPanes(document.getElementById("app")!), stateFromUrl(api), (a) => void drawPage(a));
window.addEventListener("popstate", () => app.restore(stateFromUrl(api)));
acceptDroppedTraces(app);
buildHeader(app);
void drawPage(app);
