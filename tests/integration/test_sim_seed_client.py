"""The seed's Kiwoom sample client (type 00 주문체결), unchanged but for its URL and token, logs
in to the simulator, registers 00 and prints REAL 00 frames when an order is placed."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import websockets

from krfeed.brokers import sim_appkey, sim_secret
from krfeed.sim import SimConfig, Simulator

# ---- the sample client from shared/seeds/000_8ac022bb95be1661.txt; only these two change ----

SOCKET_URL = "wss://api.kiwoom.com:10000/api/dostk/websocket"  # 접속 URL
ACCESS_TOKEN = "사용자 AccessToken"  # 고객 Access Token


class WebSocketClient:
    def __init__(self, uri):
        self.uri = uri
        self.websocket = None
        self.connected = False
        self.keep_running = True

    # WebSocket 서버에 연결합니다.
    async def connect(self):
        try:
            self.websocket = await websockets.connect(self.uri)
            self.connected = True
            print("서버와 연결을 시도 중입니다.")

            # 로그인 패킷
            param = {"trnm": "LOGIN", "token": ACCESS_TOKEN}

            print("실시간 시세 서버로 로그인 패킷을 전송합니다.")
            # 웹소켓 연결 시 로그인 정보 전달
            await self.send_message(message=param)

        except Exception as e:
            print(f"Connection error: {e}")
            self.connected = False

    # 서버에 메시지를 보냅니다. 연결이 없다면 자동으로 연결합니다.
    async def send_message(self, message):
        if not self.connected:
            await self.connect()  # 연결이 끊어졌다면 재연결
        if self.connected:  # noqa: SIM102 (the sample's code, kept as it is)
            # message가 문자열이 아니면 JSON으로 직렬화
            if not isinstance(message, str):
                message = json.dumps(message)

        await self.websocket.send(message)
        print(f"Message sent: {message}")

    # 서버에서 오는 메시지를 수신하여 출력합니다.
    async def receive_messages(self):
        while self.keep_running:
            try:
                # 서버로부터 수신한 메시지를 JSON 형식으로 파싱
                response = json.loads(await self.websocket.recv())

                # 메시지 유형이 LOGIN일 경우 로그인 시도 결과 체크
                if response.get("trnm") == "LOGIN":
                    if response.get("return_code") != 0:
                        print("로그인 실패하였습니다. : ", response.get("return_msg"))
                        await self.disconnect()
                    else:
                        print("로그인 성공하였습니다.")

                # 메시지 유형이 PING일 경우 수신값 그대로 송신
                elif response.get("trnm") == "PING":
                    await self.send_message(response)

                if response.get("trnm") != "PING":
                    print(f"실시간 시세 서버 응답 수신: {response}")

            except websockets.ConnectionClosed:
                print("Connection closed by the server")
                self.connected = False
                await self.websocket.close()

    # WebSocket 실행
    async def run(self):
        await self.connect()
        await self.receive_messages()

    # WebSocket 연결 종료
    async def disconnect(self):
        self.keep_running = False
        if self.connected and self.websocket:
            await self.websocket.close()
            self.connected = False
            print("Disconnected from WebSocket server")


# ---- the sample's main(), with an order placed where it would wait forever ----


async def wait_for_output(capsys, seen: list[str], needle: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not any(needle in line for line in seen):
        assert loop.time() < end, f"{needle!r} not printed; output: {seen}"
        await asyncio.sleep(0.05)
        seen.extend(capsys.readouterr().out.splitlines())


async def test_seed_sample_client(capsys) -> None:
    global SOCKET_URL, ACCESS_TOKEN
    config = SimConfig(rate=0, ping_interval=0.3, fill_delay=0.02)
    async with Simulator(config) as sim, aiohttp.ClientSession() as http:
        body = {
            "grant_type": "client_credentials",
            "appkey": sim_appkey(1),
            "secretkey": sim_secret(1),
        }
        async with http.post(f"{sim.url}/oauth2/token", json=body) as r:
            token = (await r.json())["token"]
        SOCKET_URL = sim.kiwoom_ws_url
        ACCESS_TOKEN = token

        websocket_client = WebSocketClient(SOCKET_URL)
        receive_task = asyncio.create_task(websocket_client.run())
        await asyncio.sleep(1)
        await websocket_client.send_message(
            {
                "trnm": "REG",  # 서비스명
                "grp_no": "1",  # 그룹번호
                "refresh": "1",  # 기존등록유지여부
                "data": [
                    {  # 실시간 등록 리스트
                        "item": [""],  # 실시간 등록 요소
                        "type": ["00"],  # 실시간 항목
                    }
                ],
            }
        )
        seen: list[str] = []
        await wait_for_output(capsys, seen, "'trnm': 'REG', 'return_code': 0")
        assert any("로그인 성공하였습니다." in line for line in seen)

        order = {
            "dmst_stex_tp": "KRX",
            "stk_cd": "005930",
            "ord_qty": "3",
            "ord_uv": "",
            "trde_tp": "3",
        }
        headers = {"api-id": "kt10000", "authorization": f"Bearer {token}"}
        async with http.post(f"{sim.url}/api/dostk/ordr", json=order, headers=headers) as r:
            assert (await r.json())["return_code"] == 0
        await wait_for_output(capsys, seen, "'902': '0'")
        real = [line for line in seen if "'trnm': 'REAL'" in line]
        assert real and all("'type': '00'" in line for line in real)
        assert "'913': '접수'" in real[0]
        assert any("'913': '체결'" in line for line in real)
        # the sample echoed the PINGs, so the session stayed up
        stats = sim.stats()
        assert stats["frames_sent"]["kiwoom"]["PING"] >= 2
        assert stats["ping_timeouts"]["kiwoom"] == 0
        assert stats["connections"]["kiwoom"]["current"] == 1

        receive_task.cancel()
        await asyncio.gather(receive_task, return_exceptions=True)
        await websocket_client.disconnect()
