import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import App from "./App";
import { initConfig, restoreHashRoute, routerBasename } from "./config";
import "./index.css";

restoreHashRoute(window.location, window.history);

initConfig().then(() => {
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <App basename={routerBasename()} />
    </StrictMode>,
  );
});
