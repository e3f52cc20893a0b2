/**
 * The WebSocket front end's public API: the upgrade handler the HTTP listener mounts at /ws, and the
 * browser assets (client module and demo page) it serves.
 */
export { createWebSocketHandler } from './server.js';
export type { WebSocketHandler, WebSocketHandlerOptions, WebSocketUser } from './server.js';
export {
  BROWSER_CLIENT_URL_PATH,
  browserClientFilePath,
  browserClientSource,
  DEMO_HTML,
  DEMO_URL_PATH,
  webSocketAssets,
} from './web-assets.js';
export type { WebAsset } from './web-assets.js';
export { CloseCode, WsErrorCode } from './errors.js';
