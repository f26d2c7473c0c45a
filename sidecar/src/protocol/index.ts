export * from './cdc.js';
export * from './clc/index.js';
export * from './cursor.js';
export * from './errors.js';
export * from './llc/index.js';
export * from './tcp-option.js';
export * from './work-request.js';
