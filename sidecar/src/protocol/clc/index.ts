export * from './accept-confirm-v2.js';
export * from './accept-confirm.js';
export * from './constants.js';
export * from './decline-codes.js';
export * from './decline.js';
export * from './header.js';
export * from './message.js';
export * from './proposal.js';
