import ms from "ms";

const started = Date.now();
export const version = "1.3.0";

export function greeting(who: string, app: string): string {
  return `hello ${who} from ${app} (@acme/shared ${version})`;
}

export function uptime(): string {
  return ms(Math.max(Date.now() - started, 1000));
}
