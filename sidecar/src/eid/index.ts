export * from './tenant.js';
export * from './ueid.js';
