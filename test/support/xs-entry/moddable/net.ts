export default {
  resolve(name: string, done: (name: string, address?: string) => void): void {
    done(name, '127.0.0.1');
  },
  get(property: string): string | undefined {
    return property === 'BSSID' ? '24:0a:c4:12:34:56' : undefined;
  },
};
