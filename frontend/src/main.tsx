import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import App from "./App";
import { initConfig, routerBasename } from "./config";
import "./index.css";

initConfig().then(() => {
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <App basename={routerBasename()} />
    </StrictMode>,
  );
});
