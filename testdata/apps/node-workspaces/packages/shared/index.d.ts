export declare const version: string;
export declare function greeting(who: string, app: string): string;
export declare function uptime(): string;
