export default { resolve(name: string, done: (name: string, address?: string) => void): void { done(name, '127.0.0.1'); } };
