export * from './client.js';
export * from './framer.js';
export * from './machine.js';
export * from './negotiate.js';
export * from './prefix-match.js';
export * from './server.js';
export * from './types.js';
